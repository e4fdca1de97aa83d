"""What a judge trains on: a build's train and held-out splits with the facts of the build (`load_data`), and
the training DataLoader, whose order (`EpochSampler`) derives from the recipe seed and the epoch alone and
whose augmentation (`SeededSamples`) from the seed, the epoch and the sample alone, so a resume or another
number of workers gives the same batches."""

from __future__ import annotations

import hashlib
import math
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from canvasdata.data import ImageLabels, LabelledImages, load_split, make_loader, train_transform
from canvasdata.devices import Session
from canvasdata.judges.recipe import JudgeRecipe
from canvasdata.manifest import MANIFEST, STATE, Manifest, open_build


@dataclass
class Data:
    """The train split, the held-out split (None when the build has none) and the facts of their source."""

    train: LabelledImages
    test: LabelledImages | None
    facts: dict = field(default_factory=dict)


def read_manifest(data: str | Path, allow_partial: bool = False) -> Manifest | None:
    """The build's manifest (checked as every reader does: `manifest.open_build`), or None for a `datasets`
    dataset, or for an unfinished build used with `allow_partial`."""
    path = Path(data)
    if (path / MANIFEST).exists() or (path / STATE).is_dir():
        return open_build(path, allow_partial=allow_partial)
    return None


def load_data(recipe: JudgeRecipe, data: str | Path, allow_partial: bool = False) -> Data:
    """The train and (if any) test split, and the facts of the build they come from; a damaged or unfinished
    build is refused unless `allow_partial` (then its good shards are used)."""
    concept = recipe.concept or None
    manifest = read_manifest(data, allow_partial)
    train = load_split(data, "train", recipe.tasks, concept, manifest=manifest, allow_partial=allow_partial)
    try:
        test = load_split(data, "test", recipe.tasks, concept, manifest=manifest, allow_partial=allow_partial)
    except ValueError:
        test = None
    facts: dict = {"source": str(data)}
    if manifest is not None:
        facts.update(recipe=manifest.recipe_name, recipe_hash=manifest.recipe_hash)
    return Data(train, test, facts)



def held_out_loader(recipe: JudgeRecipe, data: Data) -> DataLoader | None:
    """The held-out split in order (for the accuracy at each epoch's end), or None without one."""
    if data.test is None:
        return None
    return make_loader(ImageLabels(data.test, recipe.image_size), recipe.batch_size, shuffle=False,
                       workers=recipe.workers)


def mix(*parts: int) -> int:
    """A 63-bit seed derived from integers (blake2b): nearby inputs give unrelated random streams. Not
    `seeds.derive_seed`, which hashes its parts differently: this one keeps the data order and augmentation
    (hence the trained weights) of the judges trained so far."""
    return int.from_bytes(hashlib.blake2b(repr(parts).encode(), digest_size=8).digest(), "little") >> 1


class EpochSampler(Sampler):
    """The training order: a permutation drawn from (seed, epoch) alone, padded and dealt over the
    ranks as DistributedSampler does, yielding (epoch, index) keys; `set_epoch(epoch, start)` starts
    part-way through an epoch (a resume)."""

    def __init__(self, n: int, seed: int, rank: int = 0, world: int = 1) -> None:
        self.n, self.seed, self.rank, self.world = n, seed, rank, world
        self.per_rank = math.ceil(n / world)
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Iterate over epoch `epoch`'s order from its `start`-th sample (of this rank) on."""
        self.epoch, self.start = epoch, start

    def order(self) -> list[int]:
        """This rank's sample indices for the current epoch, in order."""
        g = torch.Generator().manual_seed(mix(self.seed, self.epoch))
        perm = torch.randperm(self.n, generator=g).tolist()
        total = self.per_rank * self.world
        perm = (perm * math.ceil(total / self.n))[:total]
        return perm[self.rank::self.world]

    def __iter__(self):
        return iter([(self.epoch, i) for i in self.order()[self.start:]])

    def __len__(self) -> int:
        return self.per_rank - self.start


class SeededSamples(Dataset):
    """Training samples keyed (epoch, index) whose augmentation draws from (seed, epoch, index) alone,
    not from the process's random state: any worker, in any order, after any resume, gives the same
    crop and flip, and the trainer's own random state (dropout) is left untouched."""

    def __init__(self, samples: ImageLabels, seed: int) -> None:
        self.samples, self.seed = samples, seed

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, key: tuple[int, int]):
        epoch, i = key
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(mix(self.seed, epoch, i))
            return self.samples[i]


def seed_worker(worker_id: int) -> None:
    """Seed numpy and random in a DataLoader worker from its torch seed (the loader's base seed, drawn
    from a generator seeded with the recipe seed, plus the worker id)."""
    seed = torch.initial_seed() % 2**32
    np.random.seed(seed)
    random.seed(seed)


def train_loader(recipe: JudgeRecipe, data: LabelledImages, session: Session) -> DataLoader:
    """The training DataLoader: EpochSampler order, SeededSamples augmentation, worker processes whose
    number does not change a batch."""
    transform = train_transform(recipe.image_size, recipe.crop_scale, recipe.hflip, recipe.degrade_prob,
                                recipe.degrade_blur, recipe.degrade_scale, recipe.degrade_jpeg)
    samples = SeededSamples(ImageLabels(data, recipe.image_size, transform), recipe.seed)
    sampler = EpochSampler(len(samples), recipe.seed, session.rank, session.world)
    return DataLoader(samples, recipe.batch_size, sampler=sampler, num_workers=recipe.workers,
                      pin_memory=torch.cuda.is_available(), drop_last=sampler.per_rank > recipe.batch_size,
                      generator=torch.Generator().manual_seed(recipe.seed), worker_init_fn=seed_worker,
                      persistent_workers=recipe.workers > 0)


def steps_per_epoch(loader: DataLoader) -> int:
    """Batches in a whole epoch of `loader` (whatever epoch position its sampler is set to)."""
    n, bs = loader.sampler.per_rank, loader.batch_size
    return max(1, n // bs if loader.drop_last else math.ceil(n / bs))
