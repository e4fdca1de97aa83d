"""Score an answer set with judges: UA, IRA, CRA (and the residual rate), per-class accuracy, what the
judge sees instead of the forgotten class, and optionally Frechet distance and KID against real images."""

from __future__ import annotations

import io
import json
from collections import Counter
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from canvasdata.evaluate.answers import Answer, read_answers, read_reference_folder
from canvasdata.judges.model import Judge
from canvasdata.metrics import frechet_distance, kid, request_scores
from canvasdata.taxonomy import OBJECTS, SEED_STYLE, UC60, unknown_message


class AnswerImages(Dataset):
    """Decoded answer images (uint8 [3,S,S]); an unreadable file raises an error naming it."""

    def __init__(self, answers: Sequence[Answer], size: int) -> None:
        self.answers, self.size = list(answers), size

    def __len__(self) -> int:
        return len(self.answers)

    def __getitem__(self, i: int) -> torch.Tensor:
        a = self.answers[i]
        try:
            img = Image.open(io.BytesIO(a.data) if a.data is not None else a.path)
            img.draft("RGB", (self.size, self.size))
            img = img.convert("RGB").resize((self.size, self.size), Image.BICUBIC)
        except (OSError, ValueError) as e:
            raise ValueError(f"{a.path or a.style + '/' + a.object}: unreadable image ({e})") from None
        return torch.from_numpy(np.asarray(img).copy()).permute(2, 0, 1)


def parse_forget(spec: str, styles: Sequence[str] = UC60, objects: Sequence[str] = OBJECTS) -> tuple[str, str]:
    """'style:Van_Gogh' or 'object:Cats' -> (domain, name)."""
    domain, _, name = spec.partition(":")
    if domain not in ("style", "object") or not name:
        raise ValueError(f"--forget {spec!r}: expected style:NAME or object:NAME")
    space = styles if domain == "style" else objects
    if name not in space:
        raise ValueError(f"--forget {spec!r}: " + unknown_message(name, space, f"{domain} names"))
    return domain, name


def judge_for(judges: Sequence[Judge], task: str) -> Judge:
    for j in judges:
        if task in j.tasks:
            return j
    raise ValueError(f"no judge for the {task} task among the judges given (tasks: "
                     f"{sorted({t for j in judges for t in j.tasks})})")


@torch.no_grad()
def run_judge(judge: Judge, answers: Sequence[Answer], batch_size: int = 64, workers: int = 2,
              features: bool = False) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Predicted class ids per task (and pre-logits features) for every answer image, batched."""
    for a in answers:
        if a.path is not None and not a.path.exists():
            raise ValueError(f"{a.path}: missing answer image")
    dev = next(judge.parameters()).device
    loader = DataLoader(AnswerImages(answers, judge.image_size), batch_size=batch_size, num_workers=workers)
    preds: dict[str, list[np.ndarray]] = {t: [] for t in judge.tasks}
    feats = []
    judge.eval()
    for x in loader:
        f, out = judge.forward_normalized(judge.prepare(x.to(dev)))
        for t, logits in out.items():
            preds[t].append(logits.argmax(1).cpu().numpy())
        if features:
            feats.append(f.float().cpu().numpy())
    return {t: np.concatenate(v) for t, v in preds.items()}, (np.concatenate(feats) if features else None)


def inception_features(answers: Sequence[Answer], weights: Path | str, batch_size: int = 32, workers: int = 2,
                       device: str = "cpu") -> np.ndarray:
    """2048-d pool features of torchvision's Inception v3 (the network the original benchmark used),
    from a weights file the user provides; nothing is downloaded."""
    import torchvision

    weights = Path(weights)
    if not weights.exists():
        raise FileNotFoundError(f"{weights}: Inception v3 weights file not found (torchvision's "
                                "inception_v3_google-0cc3c7bd.pth); canvasdata never downloads it")
    net = torchvision.models.inception_v3(weights=None, aux_logits=True, init_weights=False)
    net.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    net.fc = torch.nn.Identity()
    net = net.eval().to(device)
    mean = torch.tensor([0.485, 0.456, 0.406], device=device).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225], device=device).view(1, 3, 1, 1)
    out = []
    with torch.no_grad():
        for x in DataLoader(AnswerImages(answers, 299), batch_size=batch_size, num_workers=workers):
            out.append(net((x.to(device).float() / 255 - mean) / std).cpu().numpy())
    return np.concatenate(out)


def score_answers(answers: Sequence[Answer] | Path | str, forget: str, judges: Sequence[Judge], *,
                  reference: Path | str | None = None, inception: Path | str | None = None,
                  include_seed_images: bool = True, batch_size: int = 64, workers: int = 2,
                  out: Path | str | None = None) -> dict:
    """Score one unlearning request; writes report.json and report.md to `out` when given."""
    if inception is not None and not Path(inception).exists():
        raise FileNotFoundError(f"{inception}: Inception v3 weights file not found (torchvision's "
                                "inception_v3_google-0cc3c7bd.pth); canvasdata never downloads it")
    if not isinstance(answers, (list, tuple)):
        answers = read_answers(answers)
    style_j, object_j = judge_for(judges, "style"), judge_for(judges, "object")
    styles, objects = style_j.class_names["style"], object_j.class_names["object"]
    domain, target = parse_forget(forget, styles, objects)
    for a in answers:
        if a.style not in styles:
            raise ValueError(f"answer style {a.style!r} is not in the style judge's label space "
                             f"{style_j.label_space['style']!r}")
    ts = np.array([styles.index(a.style) for a in answers])
    to = np.array([objects.index(a.object) for a in answers])
    want_feats = reference is not None and inception is None
    preds, feats = run_judge(style_j, answers, batch_size, workers, features=want_feats)
    if object_j is not style_j:
        preds.update(run_judge(object_j, answers, batch_size, workers)[0])
    space = styles if domain == "style" else objects
    tid = space.index(target)
    seed_id = styles.index(SEED_STYLE) if SEED_STYLE in styles else None
    s = request_scores(ts, to, preds["style"], preds["object"], domain, tid, seed_id, include_seed_images)
    own_true, own_pred = (ts, preds["style"]) if domain == "style" else (to, preds["object"])
    instead = Counter(space[p] for p in own_pred[own_true == tid])
    report = {
        "forget": {"domain": domain, "target": target},
        "include_seed_images": include_seed_images,
        "judges": {t: j.info.model for j in judges for t in j.tasks},
        "num_images": len(answers),
        "ua": s.ua, "ira": s.ira, "cra": s.cra, "residual_rate": s.residual_rate,
        "n_forget_images": s.n_forget, "n_retain_images": s.n_retain,
        "per_class_accuracy": {space[c]: v for c, v in s.per_class_accuracy.items()},
        "forgotten_predicted_as": dict(instead.most_common()),
    }
    if reference is not None:
        real = read_reference_folder(reference, target if domain == "style" else None,
                                     target if domain == "object" else None)
        if inception is not None:
            fa, fr = inception_features(answers, inception, workers=workers), inception_features(real, inception, workers=workers)
            report["feature_extractor"] = "torchvision inception_v3 pool (2048-d)"
        else:
            fa, fr = feats, run_judge(style_j, real, batch_size, workers, features=True)[1]
            report["feature_extractor"] = f"style judge pre-logits ({style_j.info.model})"
        report["frechet_distance"] = frechet_distance(fa, fr)
        report["kid"], report["kid_std"] = kid(fa, fr, subsets=20, subset_size=min(1000, len(fa), len(fr)))
        report["num_reference_images"] = len(real)
    if out is not None:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "report.json").write_text(json.dumps(report, indent=2))
        (out / "report.md").write_text(report_markdown(report))
    return report


def report_markdown(r: dict) -> str:
    pct = lambda v: f"{v * 100:.2f}"  # noqa: E731
    lines = [f"# Unlearning report: forget {r['forget']['domain']} `{r['forget']['target']}`", "",
             "| UA | IRA | CRA | residual rate | images |" + (" FD | KID |" if "frechet_distance" in r else ""),
             "|---|---|---|---|---|" + ("---|---|" if "frechet_distance" in r else ""),
             f"| {pct(r['ua'])} | {pct(r['ira'])} | {pct(r['cra'])} | {pct(r['residual_rate'])} | {r['num_images']} |"
             + (f" {r['frechet_distance']:.2f} | {r['kid']:.4f} |" if "frechet_distance" in r else ""), "",
             f"Seed_Images counted in the style denominators: {r['include_seed_images']}.", "",
             f"The forgotten class was judged as: " + ", ".join(f"{k} ({v})" for k, v in r["forgotten_predicted_as"].items()),
             "", "| class | accuracy |", "|---|---|"]
    lines += [f"| {k} | {pct(v)} |" for k, v in r["per_class_accuracy"].items()]
    return "\n".join(lines) + "\n"
