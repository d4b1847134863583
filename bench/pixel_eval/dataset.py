"""The evaluation set: annotated real files (annotations.json) located in the installed packages.

Files are referenced, never copied into the repository: package + path inside the package's data
folder (a zip member after '!'), checked against the recorded SHA-256 so that a different release of
a package cannot silently change what the boxes describe.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
ANNOTATIONS = HERE / "annotations.json"

#: package name -> (importable module, data folder inside it)
PACKAGES = {
    "pydicom": ("pydicom", "data/test_files"),
    "pydicom-data": ("data_store", "data"),
    "deid-data": ("deid_data", "data"),
}


@dataclass
class Box:
    cls: str  # "phi" or "label"
    kind: str
    text: str
    box: tuple[int, int, int, int]  # x0, y0, x1, y1 (exclusive)
    frames: list[int] | str  # frame indices or "all"

    def on_frame(self, index: int) -> bool:
        return self.frames == "all" or index in self.frames


@dataclass
class Case:
    name: str  # unique, file-system safe
    source: str  # "package/path" or "generated"
    path: Path  # readable DICOM file on disk
    modality: str
    frames: int | None
    rows: int | None
    cols: int | None
    decodable: bool
    no_text: bool | None
    boxes: list[Box] = field(default_factory=list)
    note: str = ""
    recipe: str = "default"

    @property
    def phi(self) -> list[Box]:
        return [b for b in self.boxes if b.cls == "phi"]

    @property
    def labels(self) -> list[Box]:
        return [b for b in self.boxes if b.cls == "label"]


def package_root(package: str) -> Path:
    module, sub = PACKAGES[package]
    return Path(importlib.import_module(module).__file__).resolve().parent / sub


def safe_name(package: str, path: str) -> str:
    stem = path.replace("!", "__").replace("/", "__")
    return f"{package}__{stem}".replace(" ", "_")


def materialise(package: str, path: str, sha256: str, cache: Path) -> Path:
    """A readable file for this entry: the package file itself, or a zip member extracted into cache."""
    root = package_root(package)
    if "!" in path:
        zpath, member = path.split("!", 1)
        out = cache / safe_name(package, path)
        if not out.exists() or hashlib.sha256(out.read_bytes()).hexdigest() != sha256:
            cache.mkdir(parents=True, exist_ok=True)
            out.write_bytes(zipfile.ZipFile(root / zpath).read(member))
        target = out
    else:
        target = root / path
    digest = hashlib.sha256(target.read_bytes()).hexdigest()
    if digest != sha256:
        raise ValueError(f"{package}/{path}: SHA-256 {digest[:12]} differs from the annotated {sha256[:12]}")
    return target


def load_real(cache: Path, annotations: Path = ANNOTATIONS) -> list[Case]:
    doc = json.loads(annotations.read_text())
    cases = []
    for e in doc["files"]:
        boxes = [Box(b["cls"], b["kind"], b["text"], tuple(b["box"]), b["frames"]) for b in e["boxes"]]
        cases.append(Case(
            name=safe_name(e["package"], e["path"]), source=f"{e['package']}/{e['path']}",
            path=materialise(e["package"], e["path"], e["sha256"], cache), modality=e["modality"], frames=e["frames"],
            rows=e["rows"], cols=e["cols"], decodable=e["decodable"], no_text=e["no_text"], boxes=boxes,
            note=e.get("note", ""), recipe="mammography" if e["modality"] == "MG" else "default"))
    return cases


def load_generated(directory: Path) -> list[Case]:
    """The hard cases written by make_hard_cases.py (directory holds truth.json)."""
    doc = json.loads((directory / "truth.json").read_text())
    cases = []
    for e in doc["cases"]:
        boxes = [Box(b["cls"], b["kind"], b["text"], tuple(b["box"]), b["frames"]) for b in e["boxes"]]
        cases.append(Case(
            name=f"gen__{e['name']}", source=f"generated/{e['name']}", path=directory / e["file"], modality=e["modality"],
            frames=e["frames"], rows=e["rows"], cols=e["cols"], decodable=True, no_text=False, boxes=boxes,
            note=e["note"], recipe="mammography" if e["modality"] == "MG" else "default"))
    return cases
