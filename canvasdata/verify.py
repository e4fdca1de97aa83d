"""`canvasdata verify`: check that a build directory is what its manifest says, file by file.

The manifest seals the build: verify recomputes every listed file's size and sha256 (shards, card,
recipe, preview, prompt files), every shard's rows and label counts, re-reads `recipe.toml` and checks
that it is the recipe the manifest names (hash and canonical form), that the features, shard plan and
split totals are the ones that recipe gives, and that the source's inputs (photos) are unchanged. Any
other file in the directory is reported (and `push` refuses to upload it)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from canvasdata.dataset.kinds import dataset_kind
from canvasdata.dataset.state import is_temp
from canvasdata.encode import decode_image
from canvasdata.errors import CanvasdataError
from canvasdata.formats import FormatError, read_shard
from canvasdata.formats.common import LabelCounter
from canvasdata.manifest import MANIFEST, STATE, Manifest, SplitStats, shard_problem
from canvasdata.recipes import Recipe, load_recipe
from canvasdata.sources import make_source


@dataclass
class VerifyReport:
    """What `verify` found: one problem per damaged, edited or unexpected file; notes for what it could not check."""

    root: Path
    shards: int = 0
    rows: int = 0
    files: int = 0
    problems: list[tuple[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def unexpected(self) -> list[str]:
        """Files in the directory that the build did not write."""
        return [path for path, msg in self.problems if msg.startswith(UNEXPECTED)]

    def summary(self) -> str:
        """One line when all is well, else one line per problem; then the notes."""
        if self.ok:
            lines = [f"OK: {self.shards} shards, {self.rows} rows and {self.files} other files verified in {self.root}"]
        else:
            lines = [f"FAILED: {len(self.problems)} problem(s) in {self.root}"]
            lines += [f"  {path}: {msg}" for path, msg in self.problems]
        return "\n".join(lines + [f"  note: {n}" for n in self.notes])


UNEXPECTED = "not written by the build"


def _check_shards(root: Path, manifest: Manifest, report: VerifyReport, decode: bool) -> None:
    """Every shard's size, sha256, rows and (when all are readable) the label counts."""
    total = LabelCounter(manifest.features)
    columns = None if decode else [*total.names, *(["split"] if "split" in manifest.features else [])]
    for shard in manifest.shards:
        report.shards += 1
        problem = shard_problem(root / shard.path, shard)
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


def _check_files(root: Path, manifest: Manifest, report: VerifyReport) -> None:
    """The card, recipe, preview and prompt files against the manifest; anything else in the directory."""
    if manifest.files is None:
        report.notes.append(f"a version-{manifest.manifest_version} manifest lists no files besides the shards "
                            "(card, recipe, preview not checked): rebuild with this canvasdata to seal them")
        listed = {"README.md", "preview.jpg", "recipe.toml", *(manifest.prompt_files or [])}
    else:
        listed = {f.path for f in manifest.files}
        for entry in manifest.files:
            report.files += 1
            problem = shard_problem(root / entry.path, entry)
            if problem:
                report.problems.append((entry.path, problem))
    listed |= {MANIFEST, *(s.path for s in manifest.shards)}
    for p in sorted(root.rglob("*")):
        rel = p.relative_to(root).as_posix()
        if p.is_file() and rel not in listed and not rel.startswith(f"{STATE}/"):
            why = "a temporary file of an interrupted write (the next build run removes it)" if is_temp(rel) else ""
            report.problems.append((rel, f"{UNEXPECTED}{': ' + why if why else ' (push refuses to upload it)'}"))


def _recipe_of(root: Path, manifest: Manifest, report: VerifyReport) -> Recipe | None:
    """recipe.toml, with the shard format the build used, if it is the recipe the manifest names."""
    if not (root / "recipe.toml").exists():
        report.notes.append("no recipe.toml: the manifest's recipe, features and plan were not re-derived")
        return None
    try:
        recipe = load_recipe(root / "recipe.toml")
    except (CanvasdataError, OSError, ValueError) as e:
        report.problems.append(("recipe.toml", f"unreadable: {e}"))
        return None
    recipe = recipe.replace(output=dataclasses.replace(recipe.output, format=manifest.format))
    if recipe.hash() != manifest.recipe_hash or recipe.to_dict() != manifest.recipe:
        what = "recipe_hash" if recipe.hash() != manifest.recipe_hash else "recipe"
        report.problems.append((MANIFEST, f"its {what} is not that of recipe.toml (hash {recipe.hash()[:12]}): "
                                "the recipe or the manifest was edited"))
        return None
    return recipe


def _as_built(recipe: Recipe, manifest: Manifest) -> Recipe:
    """The recipe with its source's folder where the build found it: a relative `path` in the recipe.toml
    beside the data was relative to where the recipe first was."""
    path = manifest.backends.get("path")
    if path is None:
        return recipe
    options = tuple((k, path if k == "path" else v) for k, v in recipe.content.options)
    return recipe.replace(content=dataclasses.replace(recipe.content, options=options))


def _check_derived(recipe: Recipe, manifest: Manifest, report: VerifyReport) -> None:
    """The features, shards (names, splits, rows), split totals and inputs that the recipe gives."""
    kind = dataset_kind(recipe)
    if kind.features(recipe).to_dict() != manifest.features.to_dict():
        report.problems.append((MANIFEST, "features (class names or columns) differ from those the recipe gives"))
    planned = [(s.name, s.split, len(s.samples)) for s in kind.plan(recipe)]
    if planned != [(s.path, s.split, s.rows) for s in manifest.shards]:
        report.problems.append((MANIFEST, "the shard list (paths, splits or rows) differs from the recipe's plan"))
    splits: dict[str, SplitStats] = {}
    for s in manifest.shards:
        st = splits.setdefault(s.split, SplitStats())
        st.rows, st.bytes, st.shards = st.rows + s.rows, st.bytes + s.bytes, st.shards + 1
    if splits != manifest.splits or manifest.num_rows != sum(s.rows for s in manifest.shards) \
            or manifest.num_bytes != sum(s.bytes for s in manifest.shards):
        report.problems.append((MANIFEST, "split or total rows/bytes differ from its shard list"))
    if manifest.inputs is not None:
        try:
            now = make_source(_as_built(recipe, manifest)).fingerprint()
        except (CanvasdataError, OSError) as e:
            report.notes.append(f"the source's inputs could not be checked: {e}")
            return
        if now != manifest.inputs:
            report.problems.append((MANIFEST, "the source's inputs (photos) changed since the build: rebuild it"))


def verify(root: Path | str, decode: bool = False) -> VerifyReport:
    """Check the build in `root` against its manifest (see the module's docstring); with `decode`, also
    decode every image."""
    root = Path(root)
    manifest = Manifest.read(root)
    report = VerifyReport(root)
    _check_shards(root, manifest, report, decode)
    _check_files(root, manifest, report)
    recipe = _recipe_of(root, manifest, report)
    if recipe is not None:
        _check_derived(recipe, manifest, report)
    return report
