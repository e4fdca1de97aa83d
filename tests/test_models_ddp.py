"""`canvasdata model train` under torchrun with 2 CPU ranks (gloo) on the 32 px tiny-mini build: one sealed
pipeline folder written by rank 0, the same model as one rank trains (up to float reduction order: both
phases split each batch over the ranks), and a run stopped and resumed under 2 ranks (in either phase)
ends bit for bit where the uninterrupted 2-rank run does."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

pytest.importorskip("diffusers")

import torch.distributed as dist  # noqa: E402
from diffusers import StableDiffusionPipeline  # noqa: E402
from helpers.files import sha256  # noqa: E402

from canvasdata.checkpoints import read_state  # noqa: E402
from canvasdata.devices import Session  # noqa: E402
from canvasdata.errors import ModelError, UsageError  # noqa: E402
from canvasdata.models import train as train_module  # noqa: E402
from canvasdata.models.output import OURS, STATE_DIR, check_model  # noqa: E402
from canvasdata.models.recipe import load_model_recipe  # noqa: E402
from canvasdata.models.train import CHECKPOINT_FORMAT, train_model  # noqa: E402

if not (dist.is_available() and dist.is_gloo_available()):
    pytest.skip("torch.distributed with the gloo backend is not available in this torch build",
                allow_module_level=True)

pytestmark = pytest.mark.usefixtures("one_torch_thread")

MINI = load_model_recipe("mini")   # 6 autoencoder steps, 8 denoiser steps of 8 images (4 a rank)
COMPONENTS = ("vae", "text_encoder", "unet")
TIMEOUT = 120
# The denoiser's function, 1 rank against 2: measured max |difference| 1.2e-6 (outputs up to 1.3 in size) on
# the UNet's output and 2.3e-6 on the text encoder's; the parameters that function depends on differ by at
# most 3.5e-6. A few times above that:
ATOL = 2e-5


def torchrun(*args: str) -> subprocess.CompletedProcess:
    """`canvasdata model train mini ... --device cpu -q` under torchrun with 2 ranks (this venv's torch); the
    whole process group is killed if it runs past TIMEOUT."""
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "canvasdata.cli", "model", "train", "mini", *args, "--device", "cpu", "-q"]
    env = {k: v for k, v in os.environ.items() if k not in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR",
                                                             "MASTER_PORT")}
    env.update(OMP_NUM_THREADS="1", OMP_WAIT_POLICY="PASSIVE")
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
                            start_new_session=True)
    try:
        out, err = proc.communicate(timeout=TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate()
        pytest.fail(f"torchrun ran past {TIMEOUT} s (ranks waiting on each other?)\n{out}\n{err[-3000:]}")
    return subprocess.CompletedProcess(cmd, proc.returncode, out, err)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, f"exit {done.returncode}\n{done.stdout}\n{done.stderr[-4000:]}"
    return done.stdout


@pytest.fixture(scope="module")
def one_rank(mini_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini model trained by one process (no torchrun), one thread like each rank."""
    out = tmp_path_factory.mktemp("one") / "mini"
    train_model(MINI, mini_build, out, device="cpu", progress=False)
    return out


@pytest.fixture(scope="module")
def two_ranks(mini_build: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The mini model trained under torchrun with 2 ranks, without interruption."""
    out = tmp_path_factory.mktemp("two") / "mini"
    ok(torchrun("--data", str(mini_build), "--out", str(out)))
    return out


def test_two_ranks_write_one_sealed_pipeline(two_ranks: Path) -> None:
    record = check_model(two_ranks)   # every sealed file's size and sha256
    assert record["ranks"] == 2 and record["device"] == "cpu" and record["resumed_at"] == []
    assert record["steps"] == {"vae": 6, "unet": 8} and len(record["losses"]["unet"]) == 8
    assert json.loads((two_ranks / "model.json").read_text()) == record
    assert {p.name for p in two_ranks.iterdir()} == set(OURS)
    state = two_ranks / STATE_DIR
    assert not (state / "lock").exists()           # rank 0 held the lock alone and let it go
    assert not [p for p in two_ranks.rglob("*.tmp")]  # every atomic write completed
    samples = sorted(p.name for p in (two_ranks / "samples").glob("*.png"))
    assert samples == ["final.png", "step_000004.png", "vae_000004.png", "vae_000006.png"]
    pipe = StableDiffusionPipeline.from_pretrained(str(two_ranks))   # diffusers alone
    pipe.set_progress_bar_config(disable=True)
    images = pipe(record["example_prompt"], num_inference_steps=2, guidance_scale=4.0, output_type="pt",
                  generator=torch.Generator().manual_seed(0)).images
    assert images.shape == (1, 3, 32, 32) and torch.isfinite(images).all()


def test_two_ranks_train_the_model_one_rank_does(one_rank: Path, two_ranks: Path) -> None:
    """Both phases split each batch in two halves and DDP averages the gradients, which is the full batch's
    gradient up to float summation order (the autoencoder's GroupNorm sees one image at a time)."""
    one, two = check_model(one_rank), check_model(two_ranks)
    assert (one["ranks"], two["ranks"]) == (1, 2)
    # each rank's loss is its half's; the record holds their mean, the whole batch's (5 decimals kept)
    assert two["losses"]["vae"] == pytest.approx(one["losses"]["vae"], abs=2e-5)
    assert two["losses"]["unet"] == pytest.approx(one["losses"]["unet"], abs=2e-5)
    assert two["scaling_factor"] == pytest.approx(one["scaling_factor"], rel=1e-5)

    a, b = (StableDiffusionPipeline.from_pretrained(str(p)) for p in (one_rank, two_ranks))
    prompts = [one["example_prompt"], "A Dog image in Pop Art style.", ""]
    ids = a.tokenizer(prompts, padding="max_length", max_length=a.tokenizer.model_max_length,
                      return_tensors="pt").input_ids
    size, channels = a.unet.config.sample_size, a.unet.config.in_channels
    x = torch.randn(len(prompts), channels, size, size, generator=torch.Generator().manual_seed(0))
    t = torch.tensor([10, 500, 990])

    @torch.no_grad()
    def run(p: StableDiffusionPipeline) -> tuple[torch.Tensor, torch.Tensor]:
        context = p.text_encoder(ids)[0]
        return context, p.unet(x, t, context).sample

    (ctx_a, eps_a), (ctx_b, eps_b) = run(a), run(b)
    images = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(1)) * 2 - 1
    with torch.no_grad():
        rec_a, rec_b = (p.vae.decode(p.vae.encode(images).latent_dist.mean).sample for p in (a, b))
    assert torch.allclose(rec_a, rec_b, rtol=0, atol=ATOL), float((rec_a - rec_b).abs().max())
    assert torch.allclose(ctx_a, ctx_b, rtol=0, atol=ATOL), float((ctx_a - ctx_b).abs().max())
    assert torch.allclose(eps_a, eps_b, rtol=0, atol=ATOL), float((eps_a - eps_b).abs().max())

    # Parameters: all within ATOL but a few whose gradient is zero in exact arithmetic (biases and time
    # projections feeding a GroupNorm of one channel a group, which removes any per-channel constant; the
    # attention's key bias, which softmax removes). There AdamW's g / sqrt(v) turns float noise into steps of
    # about the learning rate in both runs (measured up to 2.2e-4 on 13 of mini's 208 UNet tensors). Those
    # must be invisible: the 1-rank model with the 2-rank values put in computes what it did.
    for component in ("text_encoder", "unet"):
        mine = getattr(a, component)
        wa, wb = ({k: v.clone() for k, v in m.state_dict().items()} for m in (mine, getattr(b, component)))
        assert wa.keys() == wb.keys()
        far = sorted(k for k in wa if not torch.allclose(wa[k], wb[k], rtol=0, atol=ATOL))
        assert len(far) <= len(wa) // 10, (component, far)
        assert all(k.endswith((".bias", "time_emb_proj.weight")) for k in far), far
        mine.load_state_dict({**wa, **{k: wb[k] for k in far}})
        _, eps_swapped = run(a)
        mine.load_state_dict(wa)
        assert torch.allclose(eps_swapped, eps_a, rtol=0, atol=ATOL), (component, far)


def test_two_ranks_stopped_and_resumed_end_bit_for_bit(two_ranks: Path, mini_build: Path, tmp_path: Path) -> None:
    """`--max-steps 3` stops both ranks 3 steps into the autoencoder, `--max-steps 6` 3 steps into the denoiser
    (3 autoencoder steps + 3): both DDP phases, checkpointed by rank 0 alone; the last rerun resumes there and
    ends on the uninterrupted 2-rank run's weights. A rank that went on without the other would block in the
    gradient all-reduce, so each clean exit is itself the proof that both stopped at the same step."""
    out = tmp_path / "resumed"
    args = ("--data", str(mini_build), "--out", str(out))
    state = out / STATE_DIR
    for budget, phase in (("3", "vae"), ("6", "unet")):
        assert f"stopped at {phase} step 3 (--max-steps)" in ok(torchrun(*args, "--max-steps", budget))
        _, meta = read_state(state / "checkpoint.safetensors", CHECKPOINT_FORMAT, ModelError)
        assert (meta["progress"]["phase"], meta["progress"]["step"]) == (phase, 3)
        assert len(meta["progress"]["losses"][phase]) == 3
        assert not (out / "model.json").exists() and not (out / "unet").exists()
        assert not (state / "lock").exists() and not [p for p in out.rglob("*.tmp")]

    ok(torchrun(*args))
    record = check_model(out)
    assert record["ranks"] == 2 and record["resumed_at"] == ["vae:3", "unet:3"]
    full = check_model(two_ranks)
    for component in COMPONENTS:
        (f,) = (two_ranks / component).glob("*.safetensors")
        assert sha256(out / f.relative_to(two_ranks)) == sha256(f), component
    assert record["losses"] == full["losses"] and record["scaling_factor"] == full["scaling_factor"]


def test_a_batch_that_does_not_split_evenly_over_the_ranks_is_refused(mini_build: Path, tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    """8 images a step over 3 ranks would give shares of 3, 3 and 2, each rank's mean loss weighted alike by
    DDP's average (and more ranks than images: an empty share, a NaN loss): refused before anything is written."""
    monkeypatch.setattr(train_module, "join_ranks", lambda device: Session(torch.device("cpu"), 0, 3))
    out = tmp_path / "three"
    with pytest.raises(UsageError, match=r"unet.batch_size 8 does not split evenly over 3 ranks") as e:
        train_model(MINI, mini_build, out, device="cpu", progress=False)
    assert "\n" not in str(e.value) and not out.exists()
