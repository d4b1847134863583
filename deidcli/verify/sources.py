"""What a run left behind, read as plain data: the manifest, the audit, the private mapping, the run facts.

Only the csv/json modules are used (no writer code): column names are read from each file's own header,
so a column added by a later version does not break verify.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path

from deidcli.verify.release import RUN_FACTS_NAME

MANIFEST_NAME = ".deid-run.json"
AUDIT_NAME = "audit.csv"
FILES_NAME = "files.csv"
VALUES_NAME = "values.csv"
OCR_TEXT_NAME = "ocr_text.csv"
#: Where verify leaves its findings (JSON) and crops, inside the private folder (they quote PHI).
VERIFY_JSON_NAME = "verify.json"
CROPS_DIR_NAME = "verify-crops"


class SourceError(Exception):
    """OUT_DIR or its private folder is not what `deid run` leaves (a usage error: exit 2)."""


def read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


@dataclass
class RunFacts:
    out_dir: Path
    private_dir: Path
    manifest: dict
    audit: list[dict[str, str]]
    files: list[dict[str, str]]
    values: list[dict[str, str]]
    ocr_text: list[dict[str, str]]
    recipe: dict
    in_dir: Path | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def org_root(self) -> str:
        return str(self.manifest.get("org_root") or "")

    def input_of(self, output_path: str) -> str:
        """The input path (relative to IN_DIR) an output came from, or ''."""
        return self._by_output.get(output_path, "")

    def __post_init__(self) -> None:
        self._by_output = {row.get("output_path", ""): row.get("input_path", "") for row in self.files
                           if row.get("output_path")}


def default_private_dir(out_dir: Path) -> Path:
    return out_dir.parent / (out_dir.name + ".private")


def builtin_recipe(name: str) -> dict | None:
    """A built-in recipe's JSON, read as data from the installed `deidcli.recipes` folder."""
    path = resources.files("deidcli.recipes").joinpath(f"{name}.json")
    return json.loads(path.read_text(encoding="utf-8")) if path.is_file() else None


def _in_dir_from_run_folders(private_dir: Path, out_dir: Path) -> Path | None:
    """The IN_DIR `deid run` recorded for this OUT_DIR in the mapping's run.json ({"runs": [{in_dir, out_dir}]})."""
    try:
        runs = json.loads((private_dir / "run.json").read_text(encoding="utf-8")).get("runs", [])
    except (OSError, ValueError, AttributeError):
        return None
    wanted = str(out_dir.resolve())
    for run in reversed(runs if isinstance(runs, list) else []):
        if isinstance(run, dict) and run.get("out_dir") == wanted and run.get("in_dir"):
            return Path(run["in_dir"])
    return None


def load_run_facts(out_dir: Path, private_dir: Path | None = None, recipe_path: Path | None = None,
                   in_dir: Path | None = None) -> RunFacts:
    out_dir = Path(out_dir)
    private_dir = Path(private_dir) if private_dir else default_private_dir(out_dir)
    manifest_path = out_dir / MANIFEST_NAME
    if not out_dir.is_dir() or not manifest_path.is_file():
        raise SourceError(f"{out_dir} is not an OUT_DIR written by deid run (no {MANIFEST_NAME})")
    if not (private_dir / FILES_NAME).is_file():
        raise SourceError(f"{private_dir} is not the private folder of {out_dir} (no {FILES_NAME}); "
                          "give it with --private-dir")
    manifest = json.loads(manifest_path.read_text(encoding="utf-8"))
    facts_path = private_dir / RUN_FACTS_NAME
    run_facts = json.loads(facts_path.read_text(encoding="utf-8")) if facts_path.is_file() else {}
    notes = []
    if recipe_path is not None:
        recipe = json.loads(Path(recipe_path).read_text(encoding="utf-8"))
    elif run_facts.get("recipe"):
        recipe = run_facts["recipe"]
    else:
        recipe = builtin_recipe(str(manifest.get("recipe", "")))
        if recipe is None:
            raise SourceError(f"the recipe {manifest.get('recipe')!r} is not built in and {facts_path} is "
                              "missing: give the recipe file with --recipe")
        notes.append(f"recipe read from the built-in {manifest.get('recipe')!r} ({RUN_FACTS_NAME} missing)")
    if in_dir is None and run_facts.get("in_dir"):
        in_dir = Path(run_facts["in_dir"])
    if in_dir is None:
        in_dir = _in_dir_from_run_folders(private_dir, out_dir)
    if in_dir is not None and not Path(in_dir).is_dir():
        notes.append(f"IN_DIR {in_dir} is not available: originals not read")
        in_dir = None
    return RunFacts(out_dir, private_dir, manifest, read_csv(out_dir / AUDIT_NAME), read_csv(private_dir / FILES_NAME),
                    read_csv(private_dir / VALUES_NAME), read_csv(private_dir / OCR_TEXT_NAME), recipe,
                    Path(in_dir) if in_dir else None, notes)
