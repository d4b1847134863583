"""The audit table (inside OUT_DIR, no PHI) and the private mapping (outside OUT_DIR, PHI).

`FileResult`'s fields are the audit columns: one place for that fact. The mapping tables are written
only to the private folder, which `deid run` creates with mode 0700 beside OUT_DIR.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass, field, fields
from pathlib import Path

from pydicom.datadict import keyword_for_tag


@dataclass
class FileResult:
    """One input file's outcome: a row of audit.csv. Every field must be free of PHI."""

    input_id: str = ""
    output_path: str = ""
    status: str = ""
    reason: str = ""
    detail: str = ""
    kept: int = 0
    removed: int = 0
    emptied: int = 0
    pseudonymised: int = 0
    frames: int = 0
    pixels_changed: bool = False
    rects_masked: int = 0
    transfer_syntax_in: str = ""
    transfer_syntax_out: str = ""
    decode_seconds: float = 0.0
    encode_seconds: float = 0.0
    ocr_engine: str = ""
    ocr_boxes_found: int = 0
    ocr_boxes_masked: int = 0
    ocr_boxes_spared: int = 0
    ocr_spared_text: str = ""
    ocr_lowest_confidence: float | None = None
    ocr_seconds: float = 0.0
    seconds: float = 0.0
    recipe_hash: str = ""
    key_fingerprint: str = ""


AUDIT_COLUMNS = [f.name for f in fields(FileResult)]


@dataclass
class PrivateRecord:
    """What one file contributes to the private mapping (PHI): never written inside OUT_DIR."""

    input_path: str
    input_id: str
    output_path: str
    status: str
    reason: str
    replacements: list[tuple[str, str, str, str]] = field(default_factory=list)  # tag, vr, original, pseudonym
    masked_text: list[tuple[int, str]] = field(default_factory=list)  # frame, recognised text


FILES_COLUMNS = ["input_path", "input_id", "output_path", "status", "reason"]
VALUES_COLUMNS = ["tag", "keyword", "vr", "original", "pseudonym"]
OCR_TEXT_COLUMNS = ["input_path", "frame", "text"]


class CsvAppender:
    """Appends rows to a CSV file, one flushed line per row, so a kill loses at most the rows in flight."""

    def __init__(self, path: Path, columns: list[str]) -> None:
        self.path = path
        self.columns = columns
        new = not path.exists() or path.stat().st_size == 0
        self._handle = path.open("a", newline="", encoding="utf-8")
        self._writer = csv.writer(self._handle)
        if new:
            self._writer.writerow(columns)
            self._handle.flush()

    def append(self, row: list, flush: bool = True) -> None:
        self._writer.writerow(row)
        if flush:
            self._handle.flush()

    def flush(self) -> None:
        self._handle.flush()

    def sync(self) -> None:
        self._handle.flush()
        os.fsync(self._handle.fileno())

    def close(self) -> None:
        if not self._handle.closed:
            self.sync()
            self._handle.close()


def audit_row(result: FileResult) -> list:
    values = (getattr(result, column) for column in AUDIT_COLUMNS)
    return ["" if value is None else value for value in values]


def read_audit(path: Path) -> list[dict[str, str]]:
    """The audit's rows as text (csv module: the CLI never pays pandas' import time for this)."""
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def compact_audit(path: Path, order: list[str]) -> list[dict[str, str]]:
    """Keep the last row per input (resume appends rows for files redone) in discovery order; atomic."""
    rows = read_audit(path)
    if not rows:
        return rows
    latest = {row["input_id"]: row for row in rows}
    rank = {input_id: index for index, input_id in enumerate(order)}
    compacted = sorted(latest.values(), key=lambda row: rank.get(row["input_id"], len(rank)))
    temporary = path.with_suffix(".csv.tmp")
    with temporary.open("w", newline="", encoding="utf-8") as handle:
        writer = csv.DictWriter(handle, fieldnames=AUDIT_COLUMNS)
        writer.writeheader()
        writer.writerows(compacted)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return compacted


def audit_table(rows: list[dict[str, str]]):
    """The audit as a pandas DataFrame with numeric columns typed (the Python API's return value)."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=AUDIT_COLUMNS)
    for column in fields(FileResult):
        if column.type in ("int", "float", "float | None"):
            table[column.name] = pd.to_numeric(table[column.name], errors="coerce")
        elif column.type == "bool":
            table[column.name] = table[column.name] == "True"
    return table


class PrivateMapping:
    """The private folder: files.csv (input path <-> output), values.csv (original -> pseudonym), ocr_text.csv."""

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        self.folder = folder
        self.files = CsvAppender(folder / "files.csv", FILES_COLUMNS)
        self.values = CsvAppender(folder / "values.csv", VALUES_COLUMNS)
        self.ocr_text = CsvAppender(folder / "ocr_text.csv", OCR_TEXT_COLUMNS)
        # keyed by the pseudonym too: a date's pseudonym depends on the patient (per-patient shift)
        self._seen_values: set[tuple[str, str, str]] = set()
        values_path = folder / "values.csv"
        if values_path.stat().st_size:
            with values_path.open(newline="", encoding="utf-8") as handle:
                for row in csv.DictReader(handle):
                    self._seen_values.add((row["tag"], row["original"], row["pseudonym"]))

    def record(self, record: PrivateRecord) -> None:
        """Append one file's private rows; one flush per table per file (not per row)."""
        self.files.append([record.input_path, record.input_id, record.output_path, record.status, record.reason])
        new_values = False
        for tag, vr, original, pseudonym in record.replacements:
            if (tag, original, pseudonym) in self._seen_values:
                continue
            self._seen_values.add((tag, original, pseudonym))
            self.values.append([tag, keyword_for_tag(int(tag, 16)) or "", vr, original, pseudonym], flush=False)
            new_values = True
        if new_values:
            self.values.flush()
        for frame, text in record.masked_text:
            self.ocr_text.append([record.input_path, frame, text], flush=False)
        if record.masked_text:
            self.ocr_text.flush()

    def close(self) -> None:
        for appender in (self.files, self.values, self.ocr_text):
            appender.close()
