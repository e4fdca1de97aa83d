"""A build's manifest (`manifest.json`): the one typed `Manifest`, read and written here only. The manifest
seals the build directory: it lists every file the build wrote (shards and the card, recipe, preview and
prompt files) with its size and sha256. `open_build` and `checked_shards` are what every reader calls
before it uses a build; `canvasdata.dataset.verify` checks a whole directory; `info` summarises it."""

from __future__ import annotations

import logging
import shlex
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import datasets

from canvasdata.errors import CanvasdataError
from canvasdata.formats import sha256_file
from canvasdata.formats.common import read_json, write_json

MANIFEST = "manifest.json"
MANIFEST_VERSION = 2      # 2: `files` lists the build's other files
STATE = ".canvasdata"     # a build directory's own state: build.json, shard records, the lock
log = logging.getLogger(__name__)


class ManifestError(CanvasdataError, RuntimeError):
    """A directory without a readable canvasdata manifest."""


class DamagedBuildError(CanvasdataError, RuntimeError):
    """A build whose files no longer match its manifest (or that never finished), refused by a reader."""


@dataclass(frozen=True)
class FileEntry:
    """A file of the build other than a shard (card, recipe, preview, prompt files), as the manifest lists it."""

    path: str
    bytes: int
    sha256: str

    @classmethod
    def of(cls, root: Path, rel: str) -> FileEntry:
        """The entry of `root/rel` as it is now."""
        path = root / rel
        return cls(rel, path.stat().st_size, sha256_file(path))


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
    files: list[FileEntry] | None = None     # every other file the build wrote (None: a version-1 manifest)
    inputs: dict[str, Any] | None = None     # fingerprints of the source's inputs (photos), when it has any
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
        if self.files is not None:
            out["files"] = [asdict(f) for f in self.files]
        if self.inputs is not None:
            out["inputs"] = self.inputs
        return {**out, **self.extra}

    @classmethod
    def from_dict(cls, d: dict[str, Any], where: str = "manifest") -> Manifest:
        """Parse the JSON form; a missing or malformed entry is a ManifestError naming it."""
        known = {f for f in cls.__dataclass_fields__ if f != "extra"}
        try:
            m = cls(
                canvasdata_version=d["canvasdata_version"], torch_version=d["torch_version"],
                python_version=d["python_version"], device=d["device"], recipe_name=d["recipe_name"],
                recipe_hash=d["recipe_hash"], recipe=d["recipe"], command=d["command"], format=d["format"],
                backends=d.get("backends", {}), features=datasets.Features.from_dict(d["features"]),
                num_rows=d["num_rows"], num_bytes=d["num_bytes"],
                splits={name: SplitStats(**s) for name, s in d["splits"].items()}, counts=d["counts"],
                shards=[ShardEntry(**s) for s in d["shards"]], prompt_files=d.get("prompt_files"),
                files=[FileEntry(**f) for f in d["files"]] if "files" in d else None, inputs=d.get("inputs"),
                manifest_version=d.get("manifest_version", 1),
                extra={k: v for k, v in d.items() if k not in known},
            )
        except KeyError as e:
            raise ManifestError(f"{where}: not a canvasdata manifest (no {e.args[0]!r})") from None
        except (TypeError, ValueError, AttributeError) as e:
            raise ManifestError(f"{where}: malformed manifest ({type(e).__name__}: {e})") from None
        m._check_types(where)
        return m

    def _check_types(self, where: str) -> None:
        """Every entry of the types the dataclasses declare, and the recipe facts readable: a malformed
        manifest fails here, in one line naming the entry, not later in a reader."""
        scalars = {"str": str, "int": int}
        entries = [(f"shards[{i}]", s) for i, s in enumerate(self.shards)]
        entries += [(f"files[{i}]", f) for i, f in enumerate(self.files or [])]
        entries += [(f"splits[{k!r}]", v) for k, v in self.splits.items()]
        entries.append(("", self))
        for name, obj in entries:
            for f in fields(obj):
                value, want = getattr(obj, f.name), scalars.get(str(f.type))
                if want is not None and (not isinstance(value, want) or isinstance(value, bool)):
                    raise ManifestError(f"{where}: malformed manifest: {name + '.' if name else ''}{f.name} is "
                                        f"{type(value).__name__} {value!r:.40}, not {f.type}")
        try:
            self.facts  # noqa: B018  (reading it is the check)
        except (KeyError, TypeError, AttributeError) as e:
            raise ManifestError(f"{where}: malformed manifest: its recipe lacks the facts readers need "
                                f"({type(e).__name__}: {e})") from None

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


def shard_problem(path: Path, shard: ShardEntry | FileEntry) -> str:
    """Why a file does not match its manifest entry ("" when it does)."""
    if not path.exists():
        return "missing"
    if path.stat().st_size != shard.bytes:
        return f"size {path.stat().st_size} != {shard.bytes} in the manifest (truncated or replaced)"
    if sha256_file(path) != shard.sha256:
        return "sha256 does not match the manifest (corrupt or edited)"
    return ""


def open_build(root: Path | str, *, allow_partial: bool = False) -> Manifest | None:
    """The manifest of the finished build in `root`, for a reader about to use it. A build that never
    finished (build state but no manifest) is refused; with `allow_partial` it gives None (the caller
    reads what is there) and a warning."""
    root = Path(root)
    if not (root / MANIFEST).exists() and (root / STATE).is_dir():
        if not allow_partial:
            raise DamagedBuildError(f"{root}: the build did not finish (no {MANIFEST}); rerun its `canvasdata build` "
                                    "command to complete it, or pass --allow-partial to use the shards there")
        log.warning("%s: unfinished build (no %s): using whatever shards are there", root, MANIFEST)
        return None
    return Manifest.read(root)


def checked_shards(root: Path | str, manifest: Manifest, shards: list[ShardEntry], *,
                   allow_partial: bool = False) -> list[ShardEntry]:
    """`shards` after checking each file's size and sha256 against the manifest: a damaged one is refused
    with one line naming it, or with `allow_partial` left out with a warning."""
    root = Path(root)
    good = []
    for shard in shards:
        problem = shard_problem(root / shard.path, shard)
        if not problem:
            good.append(shard)
        elif allow_partial:
            log.warning("%s: skipping %s (%s)", root, shard.path, problem)
        else:
            raise DamagedBuildError(f"{root}: shard {shard.path}: {problem}; rerun the build to repair it "
                                    f"(`canvasdata verify {root}` lists every problem), or pass --allow-partial "
                                    "to use the other shards")
    return good


def rebuild_command(recipe: Path | str, out: Path | str, fmt: str, device: str) -> str:
    """The command that rebuilds a build from the recipe.toml shipped in it, into `out`: the same bytes,
    since it names the shard format (a command line may have chosen it over the recipe's) and the device
    type the build ran on. One form for the manifest's record (`recipe.toml`, `--out NAME`: from inside a
    downloaded copy) and for `info` (the paths of the directory given)."""
    return (f"canvasdata build {shlex.quote(str(recipe))} --out {shlex.quote(str(out))} "
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
    lines.append(f"  regenerate: {rebuild_command(Path(root) / 'recipe.toml', root, m.format, m.device)}")
    return "\n".join(lines)
