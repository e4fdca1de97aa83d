"""A build's manifest (`manifest.json`): the one typed `Manifest`, read and written here only; `verify`
checks the shards against it and `info` summarises it."""

from __future__ import annotations

import shlex
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import datasets

from canvasdata.encode import decode_image
from canvasdata.errors import CanvasdataError
from canvasdata.formats import FormatError, read_shard, sha256_file
from canvasdata.formats.common import LabelCounter, read_json, write_json

MANIFEST = "manifest.json"
MANIFEST_VERSION = 1


class ManifestError(CanvasdataError, RuntimeError):
    """A directory without a readable canvasdata manifest."""


@dataclass(frozen=True)
class ShardEntry:
    """One shard as the manifest lists it."""

    path: str
    split: str
    rows: int
    bytes: int
    sha256: str


@dataclass
class SplitStats:
    """Rows, bytes and shards of one split."""

    rows: int = 0
    bytes: int = 0
    shards: int = 0


@dataclass(frozen=True)
class RecipeFacts:
    """What readers need of the recipe a build came from (the manifest keeps its whole canonical form)."""

    kind: str
    style_space: str
    object_space: str
    styles: tuple[str, ...]
    objects: tuple[str, ...]
    images_per_cell: int
    resolution: int
    concepts: tuple[str, ...]


@dataclass
class Manifest:
    """What a build holds and how it was made: versions, the recipe, the typed features, per-split and
    per-class counts and every shard's checksum. `to_dict` is the JSON form, key for key."""

    canvasdata_version: str
    torch_version: str
    python_version: str
    device: str
    recipe_name: str
    recipe_hash: str
    recipe: dict[str, Any]           # the recipe's canonical form (what its hash covers)
    command: str                     # the command that rebuilds the build from its recipe.toml
    format: str
    backends: dict[str, Any]
    features: datasets.Features
    num_rows: int
    num_bytes: int
    splits: dict[str, SplitStats]
    counts: dict[str, dict[str, int]]
    shards: list[ShardEntry]
    prompt_files: list[str] | None = None   # concept sets: prompts/{concept}/*.json
    manifest_version: int = MANIFEST_VERSION
    extra: dict[str, Any] = field(default_factory=dict, repr=False)  # keys this version does not know, kept

    def to_dict(self) -> dict[str, Any]:
        """The JSON form, in the order `manifest.json` has always had."""
        out = {
            "manifest_version": self.manifest_version,
            "canvasdata_version": self.canvasdata_version,
            "torch_version": self.torch_version,
            "python_version": self.python_version,
            "device": self.device,
            "recipe_name": self.recipe_name,
            "recipe_hash": self.recipe_hash,
            "recipe": self.recipe,
            "command": self.command,
            "format": self.format,
            "backends": self.backends,
            "features": self.features.to_dict(),
            "num_rows": self.num_rows,
            "num_bytes": self.num_bytes,
            "splits": {name: asdict(s) for name, s in self.splits.items()},
            "counts": self.counts,
            "shards": [asdict(s) for s in self.shards],
        }
        if self.prompt_files is not None:
            out["prompt_files"] = self.prompt_files
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "manifest") -> Manifest:
        """Parse the JSON form; a missing or malformed entry is a ManifestError naming it."""
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        try:
            return cls(
                canvasdata_version=d["canvasdata_version"], torch_version=d["torch_version"],
                python_version=d["python_version"], device=d["device"], recipe_name=d["recipe_name"],
                recipe_hash=d["recipe_hash"], recipe=d["recipe"], command=d["command"], format=d["format"],
                backends=d.get("backends", {}), features=datasets.Features.from_dict(d["features"]),
                num_rows=d["num_rows"], num_bytes=d["num_bytes"],
                splits={name: SplitStats(**s) for name, s in d["splits"].items()}, counts=d["counts"],
                shards=[ShardEntry(**s) for s in d["shards"]], prompt_files=d.get("prompt_files"),
                manifest_version=d.get("manifest_version", MANIFEST_VERSION),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except KeyError as e:
            raise ManifestError(f"{where}: not a canvasdata manifest (no {e.args[0]!r})") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise ManifestError(f"{where}: malformed manifest ({e})") from None

    @classmethod
    def read(cls, root: Path | str) -> Manifest:
        """The manifest of the build in `root`."""
        path = Path(root) / MANIFEST
        data = read_json(path, ManifestError, f"{root}: no {MANIFEST}; is this a canvasdata build directory?")
        return cls.from_dict(data, str(path))

    def write(self, root: Path | str) -> Path:
        """Write `root/manifest.json` atomically; returns its path."""
        path = Path(root) / MANIFEST
        write_json(path, self.to_dict())
        return path

    def __getitem__(self, key: str) -> Any:
        """The JSON form's entry `key`, for scripts written against `manifest.json`."""
        return self.to_dict()[key]

    @property
    def facts(self) -> RecipeFacts:
        """The recipe facts readers use (kind, label spaces, classes built, size)."""
        r = self.recipe
        return RecipeFacts(
            kind=r.get("kind", "grid"), style_space=r["style_space"]["name"], object_space=r["object_space"]["name"],
            styles=tuple(r["styles"]), objects=tuple(r["objects"]), images_per_cell=r["images_per_cell"],
            resolution=r["resolution"], concepts=tuple(c["name"] for c in r.get("concepts", [])))

    def class_names(self, column: str) -> list[str]:
        """Names of a class-label column."""
        return list(self.features[column].names)

    def shards_of(self, split: str | None = None, config: str | None = None) -> list[ShardEntry]:
        """The shards of a split (all splits: None), of one config (`data/{config}/...`) when given."""
        return [s for s in self.shards if (split is None or s.split == split)
                and (config is None or s.path.startswith(f"data/{config}/"))]


def read_manifest(root: Path | str) -> dict:
    """The manifest's JSON form (for `canvasdata.evaluate` and `formats.folder`, which read it as a dict)."""
    return Manifest.read(root).to_dict()


def class_names(manifest: dict, column: str) -> list[str]:
    """Names of a class-label column of a manifest's JSON form (see `Manifest.class_names`)."""
    return list(manifest["features"][column]["names"])


@dataclass
class VerifyReport:
    """What `verify` found: one problem per bad shard (or other damage)."""

    root: Path
    shards: int = 0
    rows: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    def summary(self) -> str:
        """One line when all is well, else one line per problem."""
        if self.ok:
            return f"OK: {self.shards} shards, {self.rows} rows verified in {self.root}"
        lines = [f"FAILED: {len(self.problems)} problem(s) in {self.root}"]
        lines += [f"  {path}: {msg}" for path, msg in self.problems]
        return "\n".join(lines)


def _file_problem(path: Path, shard: ShardEntry) -> str:
    """Why a shard file does not match its manifest entry ("" when it does)."""
    if not path.exists():
        return "missing"
    if path.stat().st_size != shard.bytes:
        return f"size {path.stat().st_size} != {shard.bytes} in the manifest (truncated or replaced)"
    if sha256_file(path) != shard.sha256:
        return "sha256 does not match the manifest (corrupt)"
    return ""


def _unlisted(root: Path, manifest: Manifest) -> list[str]:
    """Files under `data/` that the manifest does not list."""
    if not (root / "data").exists():
        return []
    listed = {s.path for s in manifest.shards}
    found = (p.relative_to(root).as_posix() for p in sorted((root / "data").rglob("*")) if p.is_file())
    return [rel for rel in found if rel not in listed]


def verify(root: Path | str, decode: bool = False) -> VerifyReport:
    """Recompute every shard's sha256, row count and label counts; with `decode`, decode every image."""
    root = Path(root)
    manifest = Manifest.read(root)
    report = VerifyReport(root)
    total = LabelCounter(manifest.features)
    columns = None if decode else [*total.names, *(["split"] if "split" in manifest.features else [])]
    for shard in manifest.shards:
        report.shards += 1
        problem = _file_problem(root / shard.path, shard)
        if problem:
            report.problems.append((shard.path, problem))
            continue
        n = 0
        try:
            for row in read_shard(root / shard.path, columns):
                n += 1
                total.add(row)
                if decode:
                    decode_image(row["image"])
        except (FormatError, OSError, ValueError) as e:
            report.problems.append((shard.path, f"unreadable: {e}"))
            continue
        if n != shard.rows:
            report.problems.append((shard.path, f"{n} rows, manifest says {shard.rows}"))
        report.rows += n
    if report.ok:
        counts = total.result()
        report.problems += [(MANIFEST, f"{key} counts differ from the shards")
                            for key, expected in manifest.counts.items() if counts.get(key, {}) != expected]
    report.problems += [(rel, "not listed in the manifest") for rel in _unlisted(root, manifest)]
    return report


def rebuild_command(root: Path | str, fmt: str, device: str) -> str:
    """The command that rebuilds the build in `root` from the recipe.toml shipped beside it: the same
    bytes, since it names the shard format (a command line may have chosen it over the recipe's) and
    the device type the build ran on."""
    root = Path(root)
    return (f"canvasdata build {shlex.quote(str(root / 'recipe.toml'))} --out {shlex.quote(str(root))} "
            f"--format {fmt} --device {device}")


def info(root: Path | str) -> str:
    """A human summary of a build, ending with the command that regenerates it where it is."""
    m = Manifest.read(root)
    r = m.facts
    lines = [
        f"{root}: canvasdata build of recipe {m.recipe_name!r} (hash {m.recipe_hash[:12]})",
        f"  built with canvasdata {m.canvasdata_version}, torch {m.torch_version}, device {m.device}",
        f"  {m.num_rows:,} images, {m.num_bytes / 1e6:,.1f} MB in {len(m.shards)} {m.format} shards",
        f"  {len(r.styles)} styles (space {r.style_space}) x {len(r.objects)} objects x "
        f"{r.images_per_cell} images at {r.resolution} px",
    ]
    lines += [f"  split {name}: {s.rows:,} rows, {s.shards} shards" for name, s in m.splits.items()]
    lines.append(f"  regenerate: {rebuild_command(root, m.format, m.device)}")
    return "\n".join(lines)
