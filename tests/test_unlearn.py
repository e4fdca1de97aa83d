"""ESD (canvasdata.unlearn) on the tiny offline pipeline: the output folder, which parameters change,
exact resume after an interruption, chaining, refusals, the vocabulary check and the command line."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

from diffusers import StableDiffusionPipeline  # noqa: E402
from helpers.files import weights  # noqa: E402

from canvasdata.cliargs import CommandParser  # noqa: E402
from canvasdata.errors import MissingExtraError, UsageError  # noqa: E402
from canvasdata.extras import load_extra  # noqa: E402
from canvasdata.unlearn import ESDConfig, esd  # noqa: E402
from canvasdata.unlearn.cli import add_unlearn_commands  # noqa: E402
from canvasdata.unlearn.sequence import erase_sequence  # noqa: E402

CONFIG = ESDConfig(iterations=3, sample_steps=3, checkpoint_every=2, lr=1e-3)
UNET = Path("unet") / "diffusion_pytorch_model.safetensors"


def changed(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> list[str]:
    return [k for k in a if not torch.equal(a[k], b[k])]


def listing(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*"))


pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture(scope="module")
def style_run(tiny_sd_pipeline: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, esd.ESDResult]:
    """style:Van_Gogh erased from the tiny pipeline (auto: xattn), uninterrupted."""
    out = tmp_path_factory.mktemp("esd") / "van_gogh"
    return out, esd.erase(tiny_sd_pipeline, "style:Van_Gogh", out, CONFIG, progress=False)


def test_style_output_is_a_pipeline_whose_unet_alone_changed(tiny_sd_pipeline: Path, style_run) -> None:
    out, result = style_run
    pipe = StableDiffusionPipeline.from_pretrained(str(out))
    assert type(pipe).__name__ == "StableDiffusionPipeline"
    for component in ("text_encoder", "vae"):
        assert not changed(weights(out, component), weights(tiny_sd_pipeline, component)), component
    diff = changed(weights(out, "unet"), weights(tiny_sd_pipeline, "unet"))
    assert diff and all("attn2" in k for k in diff)
    assert result.method == "xattn" and result.prompt == "Van Gogh style" and len(result.losses) == 3
    assert all(torch.isfinite(torch.tensor(result.losses))) and result.final_loss == result.losses[-1]
    record = json.loads((out / "unlearn.json").read_text())
    assert record["parameters"] == "xattn" and record["source"] == str(tiny_sd_pipeline.resolve())
    assert record["changed_parameters"] == result.changed_parameters > 0 and record["peak_memory_bytes"] > 0
    assert set(record["versions"]) >= {"canvasdata", "diffusers", "torch"} and len(record["history"]) == 1
    assert "Van Gogh" in (out / "README.md").read_text()
    assert not [p for p in out.iterdir() if p.name.startswith(".")]   # checkpoint, marker and lock are gone


def test_finished_rerun_is_a_no_op(tiny_sd_pipeline: Path, style_run) -> None:
    out, result = style_run
    before = {p: p.stat().st_mtime_ns for p in out.rglob("*")}
    assert esd.erase(tiny_sd_pipeline, "style:Van_Gogh", out, CONFIG, progress=False) == result
    assert {p: p.stat().st_mtime_ns for p in out.rglob("*")} == before


def test_interrupted_run_resumes_bit_identical(tiny_sd_pipeline: Path, style_run, tmp_path: Path) -> None:
    done, result = style_run
    out = tmp_path / "resumed"

    def stop(iteration: int) -> None:
        if iteration == 2:
            raise KeyboardInterrupt

    config = ESDConfig(**{**CONFIG.__dict__, "checkpoint_every": 1})   # same request, more checkpoints
    with pytest.raises(KeyboardInterrupt):
        esd.erase(tiny_sd_pipeline, "style:Van_Gogh", out, config, progress=False, _after_step=stop)
    assert (out / esd.CHECKPOINT).is_file() and (out / esd.MARKER).is_file() and not (out / esd.LOCK).exists()
    with pytest.raises(UsageError, match="unfinished output of another"):
        esd.erase(tiny_sd_pipeline, "style:Van_Gogh", out, ESDConfig(iterations=4), progress=False)
    resumed = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", out, config, progress=False)
    assert (out / UNET).read_bytes() == (done / UNET).read_bytes()
    assert resumed.losses == result.losses


def test_object_from_the_command_line_chains_on_an_unlearned_model(style_run, tmp_path: Path, capsys) -> None:
    source, _ = style_run
    parser = CommandParser(prog="canvasdata")
    add_unlearn_commands(parser.add_subparsers(dest="command", required=True))
    out = tmp_path / "dogs"
    args = parser.parse_args(["unlearn", "esd", "--model", str(source), "--forget", "object:Dogs", "--out", str(out),
                              "--iterations", "1", "--sample-steps", "2", "--lr", "1e-3", "--device", "cpu", "-q"])
    assert args.func(args) == 0
    assert "forget object:Dogs: ESD noxattn on 'Dogs'" in capsys.readouterr().out
    diff = changed(weights(out, "unet"), weights(source, "unet"))
    assert diff and not [k for k in diff if "attn2" in k]
    assert not changed(weights(out, "text_encoder"), weights(source, "text_encoder"))
    record = json.loads((out / "unlearn.json").read_text())
    assert [h["forget"] for h in record["history"]] == ["style:Van_Gogh", "object:Dogs"]


def write_word_tokenizer(folder: Path, words: list[str]) -> None:
    """A word-level CLIP tokenizer: each word a whole token (`word</w>`), built by merges of its letters."""
    from transformers import CLIPTokenizer

    vocab, merges = {"<|startoftext|>": 0, "<|endoftext|>": 1}, []
    for word in words:
        pieces = [*word[:-1], word[-1] + "</w>"]
        for piece in pieces:
            vocab.setdefault(piece, len(vocab))
        for piece in pieces[1:]:
            merges.append(f"{pieces[0]} {piece}")
            pieces[0] += piece
            vocab.setdefault(pieces[0], len(vocab))
    folder.mkdir(parents=True)
    (folder / "vocab.json").write_text(json.dumps(vocab))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(dict.fromkeys(merges)) + "\n")
    CLIPTokenizer(str(folder / "vocab.json"), str(folder / "merges.txt"), model_max_length=77).save_pretrained(
        str(folder / "saved"))


def test_a_word_outside_a_word_level_vocabulary_is_refused(tiny_sd_pipeline: Path, tmp_path: Path) -> None:
    from transformers import CLIPTokenizer

    model = tmp_path / "model"
    shutil.copytree(tiny_sd_pipeline, model)
    write_word_tokenizer(tmp_path / "words", ["a", "image", "in", "style", "van", "dogs"])
    shutil.rmtree(model / "tokenizer")
    shutil.copytree(tmp_path / "words" / "saved", model / "tokenizer")
    esd.check_vocabulary(CLIPTokenizer.from_pretrained(str(model / "tokenizer")), "Van style", model)
    with pytest.raises(UsageError, match=r"'Gogh' is not in the vocabulary of .*model"):
        esd.erase(model, "style:Van_Gogh", tmp_path / "out", CONFIG, progress=False)
    with pytest.raises(UsageError, match=r"--anchor 'Gogh style': the word 'Gogh' is not in the vocabulary"):
        esd.erase(model, "style:Van_Gogh", tmp_path / "out", CONFIG, prompt="Van style", anchor="Gogh style",
                  progress=False)
    with pytest.raises(UsageError, match=r"--retain 'Dogs in Gogh style': the word 'Gogh' is not in the vocabulary"):
        esd.erase(model, "style:Van_Gogh", tmp_path / "out", CONFIG, prompt="Van style", retain=["Dogs in Gogh style"],
                  progress=False)
    assert not (tmp_path / "out").exists()


def test_bad_inputs_are_refused_before_anything_is_written(tiny_sd_pipeline: Path, tmp_path: Path) -> None:
    def refused(pattern: str, model: Path = tiny_sd_pipeline, forget: str = "style:Van_Gogh",
                out: Path = tmp_path / "out") -> None:
        with pytest.raises(UsageError, match=pattern):
            esd.erase(model, forget, out, CONFIG, progress=False)

    refused("no model_index.json", model=tmp_path)
    other = tmp_path / "other"
    shutil.copytree(tiny_sd_pipeline, other)
    (other / "model_index.json").write_text(json.dumps({"_class_name": "FluxPipeline"}))
    refused("FluxPipeline", model=other)
    (other / "model_index.json").write_text((tiny_sd_pipeline / "model_index.json").read_text())
    shutil.rmtree(other / "text_encoder")
    refused("missing text_encoder", model=other)
    refused("photo domain", forget="style:Seed_Images")
    refused("did you mean Van_Gogh", forget="style:Van_Gog")
    refused("expected style:NAME", forget="Van_Gogh")
    foreign = tmp_path / "taken"
    foreign.mkdir()
    (foreign / "notes.txt").write_text("mine")
    refused("not empty", out=foreign)
    refused("a file, not a folder", out=foreign / "notes.txt")
    assert listing(foreign) == ["notes.txt"] and not (tmp_path / "out").exists()


def test_parameter_sets_follow_the_authors() -> None:
    names = ["conv_in.weight", "time_embedding.linear_1.weight", "down_blocks.0.attentions.0.transformer_blocks.0"
             ".attn1.to_q.weight", "down_blocks.0.attentions.0.transformer_blocks.0.attn2.to_k.weight",
             "down_blocks.0.resnets.0.time_emb_proj.weight", "conv_out.weight",
             "mid_block.attentions.0.transformer_blocks.0.attn2.to_q.weight",
             "mid_block.attentions.0.transformer_blocks.0.attn2.to_v.bias",
             "mid_block.attentions.0.transformer_blocks.0.attn2.to_out.0.weight"]
    assert esd.trainable_names(names, "xattn") == [names[3], names[6], names[7], names[8]]
    assert esd.trainable_names(names, "xattn-strict") == [names[3], names[7]]
    assert esd.trainable_names(names, "noxattn") == [names[0], names[2], names[4]]
    assert esd.trainable_names(names, "full") == names
    with pytest.raises(UsageError, match="allowed auto"):
        ESDConfig(method="attn")


def test_missing_extra_is_one_line(monkeypatch) -> None:
    def missing(name: str):
        raise ModuleNotFoundError("No module named 'diffusers'", name="diffusers")

    monkeypatch.setattr("importlib.import_module", missing)
    with pytest.raises(MissingExtraError, match=r"pip install 'canvasdata\[diffusers\]'"):
        load_extra("canvasdata.unlearn.esd", "diffusers")


def test_the_command_line_module_does_not_import_diffusers() -> None:
    code = "import sys, canvasdata.unlearn.cli; sys.exit('diffusers' in sys.modules or 'transformers' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_a_combination_is_erased_through_its_caption_on_cross_attention(tiny_sd_pipeline: Path,
                                                                      tmp_path: Path) -> None:
    """`--forget object:Dogs+style:Van_Gogh` (either order): the build's caption of that cell as the prompt,
    xattn by default, recorded in its canonical form; the record's cost fields are the suite's columns;
    an unknown name in a combination or a domain named twice is refused before anything is written."""
    out = tmp_path / "combo"
    result = esd.erase(tiny_sd_pipeline, "object:Dogs+style:Van_Gogh", out,
                       ESDConfig(iterations=1, sample_steps=2, lr=1e-3), progress=False)
    assert result.prompt == "A Dogs image in Van Gogh style." and result.method == "xattn"
    assert result.forget == "style:Van_Gogh+object:Dogs"
    diff = changed(weights(out, "unet"), weights(tiny_sd_pipeline, "unet"))
    assert diff and all("attn2" in k for k in diff)
    record = json.loads((out / "unlearn.json").read_text())
    assert record["forget"] == "style:Van_Gogh+object:Dogs" and record["request"]["parameters"] == "xattn"
    assert record["seconds"] > 0 and record["peak_memory_bytes"] > 0 and record["changed_bytes"] > 0
    assert "Van Gogh × Dogs (style × object combination) erased with ESD-x" in (out / "README.md").read_text()
    assert esd.parse_forget("style:Seed_Images+object:Dogs") == ("combination", "Seed_Images+Dogs")
    assert esd.default_prompt("combination", "Seed_Images+Dogs") == "A Dogs image in Photo style."
    for forget, pattern in (("style:Van_Gogh+object:Dog", "unknown name 'Dog' in object names; did you mean Dogs"),
                            ("style:Van_Gog+object:Dogs", "unknown name 'Van_Gog' in style names"),
                            ("style:Van_Gogh+style:Monet", "not two styles")):
        with pytest.raises(UsageError, match=pattern):
            esd.erase(tiny_sd_pipeline, forget, tmp_path / "refused", CONFIG, progress=False)
    assert not (tmp_path / "refused").exists()


# --- simultaneous and sequential requests (issue 21) --------------------------------------------------------

def test_simultaneous_requests_take_the_concepts_in_turn(tiny_sd_pipeline: Path, tmp_path: Path) -> None:
    """`--forget style:Van_Gogh,style:Monet`: iteration 0 trains on the first concept, iteration 1 on the
    second: one iteration equals the single request bit for bit, two differ from it; recorded as both."""
    one = ESDConfig(iterations=1, sample_steps=2, lr=1e-3)
    single = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "single", one, progress=False)
    both = esd.erase(tiny_sd_pipeline, "style:Van_Gogh,style:Monet", tmp_path / "both", one, progress=False)
    assert weights(both.out, "unet").keys() == weights(single.out, "unet").keys()
    assert not changed(weights(both.out, "unet"), weights(single.out, "unet"))
    two = ESDConfig(iterations=2, sample_steps=2, lr=1e-3)
    single2 = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "single2", two, progress=False)
    both2 = esd.erase(tiny_sd_pipeline, "style:Van_Gogh, style:Monet", tmp_path / "both2", two, progress=False)
    assert changed(weights(both2.out, "unet"), weights(single2.out, "unet"))
    record = json.loads((both2.out / "unlearn.json").read_text())
    assert record["forget"] == "style:Van_Gogh,style:Monet" and record["request"]["prompts"] == [
        "Van Gogh style", "Monet style"]
    assert "prompts" not in json.loads((single2.out / "unlearn.json").read_text())["request"]
    card = (both2.out / "README.md").read_text()
    assert "style:Van Gogh, style:Monet (simultaneous requests) erased with ESD-x" in card


def test_one_concept_on_several_texts_takes_them_in_turn(tiny_sd_pipeline: Path, tmp_path: Path) -> None:
    """`--prompt A B` (e.g. the captions that name the style): iteration 0 is ESD on A bit for bit, iteration
    1 trains on B; recorded as both texts of one request; a repeated or empty text is refused."""
    texts = ["Van Gogh style", "A Dogs image in Van Gogh style."]
    one = ESDConfig(iterations=1, sample_steps=2, lr=1e-3)
    single = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "single", one, progress=False)
    both = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "both", one, prompt=texts, progress=False)
    assert not changed(weights(both.out, "unet"), weights(single.out, "unet"))
    two = ESDConfig(iterations=2, sample_steps=2, lr=1e-3)
    single2 = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "single2", two, progress=False)
    both2 = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "both2", two, prompt=texts, progress=False)
    assert changed(weights(both2.out, "unet"), weights(single2.out, "unet"))
    request = json.loads((both2.out / "unlearn.json").read_text())["request"]
    assert request["forget"] == "style:Van_Gogh" and request["prompts"] == texts
    assert both2.prompt == " | ".join(texts)
    for bad in (["Van Gogh style", "Van Gogh style"], ["Van Gogh style", " "]):
        with pytest.raises(UsageError, match="non-empty and given once"):
            esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "bad", two, prompt=bad, progress=False)
    assert not (tmp_path / "bad").exists()
    parser = CommandParser(prog="canvasdata")
    add_unlearn_commands(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["unlearn", "esd", "--model", "m", "--forget", "style:Van_Gogh", "--out", "o",
                           "--prompt", *texts])
    assert a.prompt == texts


def test_an_anchor_replaces_the_empty_prompt_as_the_targets_reference(tiny_sd_pipeline: Path, tmp_path: Path) -> None:
    """`--anchor`: iteration 0's loss is the MSE to θ*(x, a) − η(θ*(x, c) − θ*(x, a)) with a the anchor text's
    embedding (not the empty prompt's); recorded as `anchors`, told in the card; refusals before writing."""
    config = ESDConfig(iterations=1, sample_steps=2, lr=1e-3, negative_guidance=0.5)
    texts, anchors = ["A Dogs image in Van Gogh style."], ["A Dogs image in Photo style."]
    plain = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "plain", config, prompt=texts, progress=False)
    anchored = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "anchored", config, prompt=texts,
                         anchor=anchors, progress=False)
    assert changed(weights(anchored.out, "unet"), weights(plain.out, "unet"))
    record = json.loads((anchored.out / "unlearn.json").read_text())
    assert record["anchors"] == record["request"]["anchors"] == anchors
    assert "anchors" not in json.loads((plain.out / "unlearn.json").read_text())["request"]
    assert "the anchor text (\"A Dogs image in Photo style.\"" in (anchored.out / "README.md").read_text()
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd_pipeline))
    trainer = esd.ESDTrainer(pipe, record["request"], torch.device("cpu"))
    index, noise, _ = trainer.draw(0)
    x = trainer.sample(noise, index, trainer.conds[0])
    t = trainer.scheduler.timesteps[index]
    x = trainer.scheduler.scale_model_input(x, t)
    a = pipe.encode_prompt(anchors[0], torch.device("cpu"), 1, False)[0]
    with torch.no_grad():
        e_a, e_c = (trainer.frozen(x, t, encoder_hidden_states=h).sample for h in (a, trainer.conds[0]))
        expected = torch.nn.functional.mse_loss(trainer.unet(x, t, encoder_hidden_states=trainer.conds[0]).sample,
                                                e_a - 0.5 * (e_c - e_a))
    assert not torch.equal(a, trainer.uncond)
    assert anchored.losses[0] == pytest.approx(float(expected), rel=1e-5)
    assert plain.losses[0] != pytest.approx(anchored.losses[0], rel=1e-3)
    out = tmp_path / "refused"
    for kwargs, says in (({"prompt": texts, "anchor": anchors * 2}, "2 texts for 1 erased texts"),
                         ({"prompt": texts, "anchor": texts}, "differ from its erased text"),
                         ({"anchor": "Van Gogh style"}, "differ from its erased text")):
        with pytest.raises(UsageError, match=says):
            esd.erase(tiny_sd_pipeline, "style:Van_Gogh", out, config, progress=False, **kwargs)
    with pytest.raises(UsageError, match="--anchor names one concept"):
        esd.erase(tiny_sd_pipeline, "style:Van_Gogh,style:Monet", out, config, anchor=["x", "y"], progress=False)
    assert not out.exists()
    parser = CommandParser(prog="canvasdata")
    add_unlearn_commands(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["unlearn", "esd", "--model", "m", "--forget", "style:Van_Gogh", "--out", "o",
                           "--prompt", *texts, "--anchor", *anchors])
    assert a.anchor == anchors


def test_retain_texts_add_a_term_that_holds_their_predictions(tiny_sd_pipeline: Path, tmp_path: Path) -> None:
    """`--retain`: iteration 0's loss is ESD's MSE plus retain_weight × the MSE between θ and θ* on the drawn
    retain text at the same x_t; the draws of the paper's ESD are unchanged (the same t and noise); recorded,
    told in the card, vocabulary-checked; refusals before writing."""
    config = ESDConfig(iterations=1, sample_steps=2, lr=1e-3)
    kept = ["A Dogs image in Photo style.", "A Cats image in Monet style."]
    plain = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "plain", config, progress=False)
    held = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "held", config, retain=kept, retain_weight=2.5,
                     progress=False)
    record = json.loads((held.out / "unlearn.json").read_text())
    assert record["retain"] == record["request"]["retain"] == kept and record["retain_weight"] == 2.5
    assert "retain" not in json.loads((plain.out / "unlearn.json").read_text())["request"]
    assert "one of 2 retain texts" in (held.out / "README.md").read_text()
    pipe = StableDiffusionPipeline.from_pretrained(str(tiny_sd_pipeline))
    trainer = esd.ESDTrainer(pipe, record["request"], torch.device("cpu"))
    ref = esd.ESDTrainer(StableDiffusionPipeline.from_pretrained(str(tiny_sd_pipeline)),
                         json.loads((plain.out / "unlearn.json").read_text())["request"], torch.device("cpu"))
    index0, noise0, k0 = ref.draw(0)
    assert k0 == -1 and trainer.draw(0)[0] == index0 and torch.equal(trainer.draw(0)[1], noise0)
    assert trainer.step(0) == pytest.approx(held.losses[0], rel=1e-6)   # θ moves off θ*: the retain term counts
    index, noise, k = trainer.draw(1)
    x = trainer.sample(noise, index, trainer.conds[0])
    t = trainer.scheduler.timesteps[index]
    x = trainer.scheduler.scale_model_input(x, t)
    r = pipe.encode_prompt(kept[k], torch.device("cpu"), 1, False)[0]
    with torch.no_grad():
        e_u, e_c, e_r = (trainer.frozen(x, t, encoder_hidden_states=h).sample for h in (trainer.uncond,
                                                                                        trainer.conds[0], r))
        mse = torch.nn.functional.mse_loss
        erased = float(mse(trainer.unet(x, t, encoder_hidden_states=trainer.conds[0]).sample, e_u - (e_c - e_u)))
        retained = 2.5 * float(mse(trainer.unet(x, t, encoder_hidden_states=r).sample, e_r))
    assert retained > 1e-3 * erased
    assert trainer.step(1) == pytest.approx(erased + retained, rel=1e-5)
    # --retain-latents own: the same draws, and the retain term on an x_t sampled along the retain text's own path
    own = esd.erase(tiny_sd_pipeline, "style:Van_Gogh", tmp_path / "own", config, retain=kept, retain_weight=2.5,
                    retain_latents="own", progress=False)
    request = json.loads((own.out / "unlearn.json").read_text())
    assert request["retain_latents"] == request["request"]["retain_latents"] == "own"
    assert "retain_latents" not in record["request"] and "own trajectory" in (own.out / "README.md").read_text()
    trainer = esd.ESDTrainer(StableDiffusionPipeline.from_pretrained(str(tiny_sd_pipeline)), request["request"],
                             torch.device("cpu"))
    assert trainer.draw(1)[:1] == (index,) and torch.equal(trainer.draw(1)[1], noise) and trainer.draw(1)[2] == k
    assert trainer.step(0) == pytest.approx(own.losses[0], rel=1e-6)
    x = trainer.scheduler.scale_model_input(trainer.sample(noise, index, trainer.conds[0]), t)
    xr = trainer.scheduler.scale_model_input(trainer.sample(trainer.retain_noise(1), index, r), t)
    assert not torch.allclose(x, xr)
    with torch.no_grad():
        e_u, e_c = (trainer.frozen(x, t, encoder_hidden_states=h).sample for h in (trainer.uncond, trainer.conds[0]))
        e_r = trainer.frozen(xr, t, encoder_hidden_states=r).sample
        erased = float(mse(trainer.unet(x, t, encoder_hidden_states=trainer.conds[0]).sample, e_u - (e_c - e_u)))
        retained = 2.5 * float(mse(trainer.unet(xr, t, encoder_hidden_states=r).sample, e_r))
    assert trainer.step(1) == pytest.approx(erased + retained, rel=1e-5)
    out = tmp_path / "refused"
    for kwargs, says in (({"retain": ["Van Gogh style"]}, "is also an erased text"),
                         ({"retain": kept * 2}, "given once, without surrounding spaces"),
                         ({"retain": kept, "retain_weight": 0.0}, "must be a positive number"),
                         ({"retain": kept, "retain_latents": "theirs"}, "allowed erased, own"),
                         ({"retain_latents": "own"}, "no --retain texts were given")):
        with pytest.raises(UsageError, match=says):
            esd.erase(tiny_sd_pipeline, "style:Van_Gogh", out, config, progress=False, **kwargs)
    assert not out.exists()
    parser = CommandParser(prog="canvasdata")
    add_unlearn_commands(parser.add_subparsers(dest="command"))
    a = parser.parse_args(["unlearn", "esd", "--model", "m", "--forget", "style:Van_Gogh", "--out", "o",
                           "--retain", *kept, "--retain-weight", "0.5"])
    assert a.retain == kept and a.retain_weight == 0.5 and a.retain_latents == "erased"


def test_simultaneous_bad_requests_are_refused_before_anything_is_written(tiny_sd_pipeline: Path,
                                                                         tmp_path: Path) -> None:
    out = tmp_path / "refused"
    for forget, pattern in (("style:Van_Gogh,object:Dogs", "choose one with --method"),
                            ("style:Van_Gogh,style:Van_Gogh", "names style:Van_Gogh twice"),
                            ("style:Van_Gogh,", "an empty request")):
        with pytest.raises(UsageError, match=pattern):
            esd.erase(tiny_sd_pipeline, forget, out, CONFIG, progress=False)
    with pytest.raises(UsageError, match="--prompt names one concept"):
        esd.erase(tiny_sd_pipeline, "style:Van_Gogh,style:Monet", out, CONFIG, prompt="x", progress=False)
    assert not out.exists()


def test_a_sequence_chains_each_step_on_the_previous_one(tiny_sd_pipeline: Path, style_run, tmp_path: Path,
                                                         capsys) -> None:
    """`unlearn sequence`: step 1 is the single request's output bit for bit, step 2 starts from it (its
    history names both); a rerun is a no-op; a repeated request or a foreign file in --out is refused."""
    first, _ = style_run
    out = tmp_path / "seq"
    parser = CommandParser(prog="canvasdata")
    add_unlearn_commands(parser.add_subparsers(dest="command", required=True))
    argv = ["unlearn", "sequence", "--model", str(tiny_sd_pipeline), "--forget", "style:Van_Gogh", "object:Dogs",
            "--out", str(out), "--iterations", "3", "--sample-steps", "3", "--checkpoint-every", "2", "--lr", "1e-3",
            "--device", "cpu", "-q"]
    args = parser.parse_args(argv)
    assert args.func(args) == 0
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 2 and lines[1].startswith("step 2: forget object:Dogs (ESD noxattn")
    step1, step2 = out / "1_style_Van_Gogh", out / "2_object_Dogs"
    assert not changed(weights(step1, "unet"), weights(first, "unet"))
    history = json.loads((step2 / "unlearn.json").read_text())["history"]
    assert [h["forget"] for h in history] == ["style:Van_Gogh", "object:Dogs"]
    assert history[1]["source"] == str(step1.resolve())
    record = json.loads((out / "sequence.json").read_text())
    assert record["forget"] == ["style:Van_Gogh", "object:Dogs"] and record["steps"] == [step1.name, step2.name]
    before = listing(out)
    again = erase_sequence(tiny_sd_pipeline, ["style:Van_Gogh", "object:Dogs"], out, CONFIG, progress=False)
    assert [r.out for r in again] == [step1, step2] and listing(out) == before
    with pytest.raises(UsageError, match="repeats style:Van_Gogh"):
        erase_sequence(tiny_sd_pipeline, ["style:Van_Gogh", "style:Van_Gogh"], tmp_path / "x", CONFIG)
    with pytest.raises(UsageError, match="holds another sequence's step"):
        erase_sequence(tiny_sd_pipeline, ["object:Dogs"], out, CONFIG)
    assert not (tmp_path / "x").exists()


def test_a_sequence_holds_its_retain_texts_at_every_step(tiny_sd_pipeline: Path, tmp_path: Path) -> None:
    """`unlearn sequence --retain`: every step is `unlearn esd --retain` from the previous step (the same
    weights as that single run), the texts recorded in each step and in sequence.json; a retain text that any
    step erases is refused before step 1 trains."""
    out = tmp_path / "seq"
    parser = CommandParser(prog="canvasdata")
    add_unlearn_commands(parser.add_subparsers(dest="command", required=True))
    flags = ["--iterations", "2", "--sample-steps", "3", "--lr", "1e-3", "--device", "cpu", "-q"]
    refused = parser.parse_args(["unlearn", "sequence", "--model", str(tiny_sd_pipeline), "--forget", "style:Van_Gogh",
                                 "object:Dogs", "--out", str(out), "--retain", "", "Dogs", *flags])
    with pytest.raises(UsageError, match="'Dogs': is also an erased text"):
        refused.func(refused)
    assert not out.exists()
    args = parser.parse_args(["unlearn", "sequence", "--model", str(tiny_sd_pipeline), "--forget", "style:Van_Gogh",
                              "object:Dogs", "--out", str(out), "--retain", "", "Monet style", "--retain-weight", "3",
                              *flags])
    assert args.func(args) == 0
    step1, step2 = out / "1_style_Van_Gogh", out / "2_object_Dogs"
    for step in (step1, step2):
        record = json.loads((step / "unlearn.json").read_text())
        assert record["retain"] == ["", "Monet style"] and record["retain_weight"] == 3.0
    seq = json.loads((out / "sequence.json").read_text())
    assert seq["retain"] == ["", "Monet style"] and seq["retain_weight"] == 3.0
    config = ESDConfig(iterations=2, sample_steps=3, lr=1e-3)
    alone = esd.erase(step1, "object:Dogs", tmp_path / "alone", config, retain=["", "Monet style"], retain_weight=3,
                      device="cpu", progress=False)
    assert not changed(weights(alone.out, "unet"), weights(step2, "unet"))
    plain = esd.erase(step1, "object:Dogs", tmp_path / "plain", config, device="cpu", progress=False)
    assert changed(weights(plain.out, "unet"), weights(step2, "unet"))


def test_an_interrupted_write_is_ours_to_clean_and_a_stray_file_is_refused(tmp_path: Path):
    from canvasdata.unlearn import esd

    out = tmp_path / "out"
    out.mkdir()
    (out / ".unlearn.json.4242.tmp").write_text("{")            # a write this module was killed in
    (out / f".{esd.CHECKPOINT}.17.tmp").write_bytes(b"")
    assert esd.plan_out(out, {"method": "esd"}) is None         # nothing foreign: start
    esd.cleanup(out)
    assert list(out.iterdir()) == []
    (out / ".notes.txt.1.tmp").write_text("mine")               # a temp name, but not of this module
    with pytest.raises(UsageError, match=r"not empty \(\.notes\.txt\.1\.tmp\)"):
        esd.plan_out(out, {"method": "esd"})
    esd.cleanup(out)
    assert (out / ".notes.txt.1.tmp").read_text() == "mine"     # never deleted
