"""Inception v3 pool features (2048-d) for Frechet distance, from a weights file the user provides;
nothing is ever downloaded.

Two files are understood, told apart by their classifier size:
- the standard FID network, pytorch-fid's `pt_inception-2015-12-05-6726825d.pth` (the TensorFlow
  FID graph ported to torch: 1008 classes and blocks that differ from torchvision's in their pooling);
  features from it give FID comparable with pytorch-fid / TTUR;
- torchvision's ImageNet `inception_v3_google-*.pth` (1000 classes), the network the original
  UnlearnCanvas evaluation used; its numbers are not comparable with standard FID.

Both take images in [0, 1] at 299 px (`canvasdata.evaluate.preprocess` resizes them as the
protocol's `inception_pipeline` says), scaled to [-1, 1], and give the pooled 2048-d `Mixed_7c`
features. With the `original` pipeline the torchvision network is built with `transform_input=True`
as `torchvision.models.inception_v3(pretrained=True)` builds it in the original `fid.py` (which then
re-maps the [-1, 1] input with ImageNet statistics); with the `canvasdata` pipeline it is built with
`transform_input=False`. The FID network never transforms its input (as pytorch-fid).
"""

from __future__ import annotations

from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F
import torchvision
from torchvision.models import inception as tv

from canvasdata.errors import MissingFileError, UsageError
from canvasdata.evaluate.preprocess import INCEPTION_SIZE
from canvasdata.evaluate.protocol import INCEPTION_PIPELINES

FID_WEIGHTS_NAME = "pt_inception-2015-12-05-6726825d.pth"


def _avg(x: torch.Tensor) -> torch.Tensor:
    return F.avg_pool2d(x, kernel_size=3, stride=1, padding=1, count_include_pad=False)


class FIDInceptionA(tv.InceptionA):
    """pytorch-fid's InceptionA: average pooling without the padded zeros."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b5 = self.branch5x5_2(self.branch5x5_1(x))
        b3 = self.branch3x3dbl_3(self.branch3x3dbl_2(self.branch3x3dbl_1(x)))
        return torch.cat([self.branch1x1(x), b5, b3, self.branch_pool(_avg(x))], 1)


class FIDInceptionC(tv.InceptionC):
    """pytorch-fid's InceptionC: average pooling without the padded zeros."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b7 = self.branch7x7_3(self.branch7x7_2(self.branch7x7_1(x)))
        bd = self.branch7x7dbl_1(x)
        for layer in (self.branch7x7dbl_2, self.branch7x7dbl_3, self.branch7x7dbl_4, self.branch7x7dbl_5):
            bd = layer(bd)
        return torch.cat([self.branch1x1(x), b7, bd, self.branch_pool(_avg(x))], 1)


class FIDInceptionE(tv.InceptionE):
    """pytorch-fid's InceptionE: average pooling without the padded zeros, or max pooling (the last block)."""

    def __init__(self, in_channels: int, max_pool: bool) -> None:
        super().__init__(in_channels)
        self.max_pool = max_pool

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        b3 = torch.cat([self.branch3x3_2a(b3), self.branch3x3_2b(b3)], 1)
        bd = self.branch3x3dbl_2(self.branch3x3dbl_1(x))
        bd = torch.cat([self.branch3x3dbl_3a(bd), self.branch3x3dbl_3b(bd)], 1)
        pool = F.max_pool2d(x, kernel_size=3, stride=1, padding=1) if self.max_pool else _avg(x)
        return torch.cat([self.branch1x1(x), b3, bd, self.branch_pool(pool)], 1)


def fid_inception_v3() -> nn.Module:
    """The FID Inception network (pytorch-fid's architecture), randomly initialised."""
    net = torchvision.models.inception_v3(weights=None, num_classes=1008, aux_logits=False, init_weights=False)
    net.Mixed_5b = FIDInceptionA(192, pool_features=32)
    net.Mixed_5c, net.Mixed_5d = FIDInceptionA(256, pool_features=64), FIDInceptionA(288, pool_features=64)
    net.Mixed_6b, net.Mixed_6c = FIDInceptionC(768, channels_7x7=128), FIDInceptionC(768, channels_7x7=160)
    net.Mixed_6d, net.Mixed_6e = FIDInceptionC(768, channels_7x7=160), FIDInceptionC(768, channels_7x7=192)
    net.Mixed_7b, net.Mixed_7c = FIDInceptionE(1280, max_pool=False), FIDInceptionE(2048, max_pool=True)
    return net


class InceptionFeatures(nn.Module):
    """Images [B,3,299,299] in [0,1] -> 2048-d pool features. `kind` says which weights ('fid' or
    'torchvision'), `pipeline` which Inception input pipeline they are used with."""

    def __init__(self, net: nn.Module, kind: str, pipeline: str) -> None:
        super().__init__()
        net.fc = nn.Identity()
        self.net, self.kind, self.pipeline = net.eval(), kind, pipeline

    @property
    def description(self) -> str:
        """What the features are, for reports; only the original's network and pipeline together
        are called the original benchmark's features."""
        resize = ("resized to 512 then 299 (bilinear)" if self.pipeline == "original"
                  else "resized to 299 (PIL bicubic, JPEG draft)")
        if self.kind == "fid":
            return (f"FID Inception v3 (pytorch-fid weights), images {resize}, scaled to [-1, 1], pool 2048-d: "
                    "standard FID features, not the original benchmark's network")
        net = (f"torchvision Inception v3 (ImageNet weights, transform_input={self.net.transform_input}), "
               f"images {resize}, scaled to [-1, 1], pooled Mixed_7c 2048-d")
        if self.pipeline == "original" and self.net.transform_input:
            return f"{net}: the original UnlearnCanvas fid.py features"
        return f"{net}: not the original UnlearnCanvas features (numbers not comparable with them)"

    @torch.no_grad()
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (INCEPTION_SIZE, INCEPTION_SIZE):
            x = F.interpolate(x.float(), size=(INCEPTION_SIZE, INCEPTION_SIZE), mode="bilinear", align_corners=False)
        return self.net(2 * x.float() - 1)


def require_weights_file(weights: Path | str) -> Path:
    """The weights path, or a FileNotFoundError saying which file to provide (nothing is downloaded)."""
    weights = Path(weights)
    if not weights.is_file():
        raise MissingFileError(f"{weights}: Inception weights file not found; give pytorch-fid's {FID_WEIGHTS_NAME} "
                                "(standard FID) or torchvision's inception_v3_google-*.pth. canvasdata never "
                                "downloads it.")
    return weights


def load_inception(weights: Path | str, device: str | torch.device = "cpu",
                   pipeline: str = "original") -> InceptionFeatures:
    """The feature network for a user-provided weights file (see the module docstring); `pipeline`
    is the protocol's `inception_pipeline`, which sets the torchvision network's `transform_input`."""
    if pipeline not in INCEPTION_PIPELINES:
        raise UsageError(f"Inception pipeline {pipeline!r}: allowed {', '.join(INCEPTION_PIPELINES)}")
    weights = require_weights_file(weights)
    try:
        state = torch.load(weights, map_location="cpu", weights_only=True)
    except Exception as e:  # torch raises several unrelated types for a file that is not a checkpoint
        raise UsageError(f"{weights}: not a torch weights file ({type(e).__name__}: {e})") from None
    fc = state.get("fc.weight") if isinstance(state, dict) else None
    if fc is None or tuple(fc.shape) not in ((1008, 2048), (1000, 2048)):
        raise UsageError(f"{weights}: not an Inception v3 state dict (expected 'fc.weight' of shape 1008x2048 for "
                         f"the FID network or 1000x2048 for torchvision's)")
    if fc.shape[0] == 1008:
        net, kind = fid_inception_v3(), "fid"
    else:
        net = torchvision.models.inception_v3(weights=None, aux_logits="AuxLogits.fc.weight" in state,
                                              init_weights=False, transform_input=pipeline == "original")
        kind = "torchvision"
    try:
        net.load_state_dict(state)
    except RuntimeError as e:
        raise UsageError(f"{weights}: weights do not fit the {kind} Inception v3 ({e})") from None
    return InceptionFeatures(net, kind, pipeline).to(device)
