"""The audit table (inside OUT_DIR, no PHI) and the private mapping (outside OUT_DIR, PHI).

`FileResult`'s fields are the audit columns: one place for that fact. The mapping tables are written
only to the private folder, which `deid run` creates with mode 0700 beside OUT_DIR.
"""

from __future__ import annotations

import contextlib
import csv
import errno
import io
import itertools
import os
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path

from pydicom.datadict import keyword_for_tag

from deidcli.mapping import (
    FILES_COLUMNS,
    FILES_NAME,
    OCR_TEXT_COLUMNS,
    OCR_TEXT_NAME,
    VALUES_COLUMNS,
    VALUES_NAME,
)


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
    #: Names of the region rules (built-in device layouts and --region-rules) that matched, "|"-separated.
    region_rules_matched: str = ""
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




#: How the private tables and the audit are encoded. `surrogateescape` keeps an input file name that is not
#: valid UTF-8 byte for byte (lossless: the CSV holds the name's own bytes), where strict UTF-8 would abort.
ENCODING = "utf-8"
ENCODING_ERRORS = "surrogateescape"
#: Mode of every file holding PHI (the private tables): readable by the owner only.
PRIVATE_FILE_MODE = 0o600


def _encode_rows(rows: list[list]) -> bytes:
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerows(rows)
    return buffer.getvalue().encode(ENCODING, ENCODING_ERRORS)


class CsvAppender:
    """Appends whole CSV records: a kill, a crash or a full disk never leaves half a line or merges two.

    Why not a buffered text file: when the disk fills mid-buffer, the part that fitted stays and the next
    append glues a new row to it (a malformed line, a mapping lost for good). Here every `append` encodes its
    rows to one byte string, writes it to an O_APPEND descriptor and, if the write fails or falls short, cuts
    the file back to its previous size before raising. A tail torn by a crash (power loss mid-write) is cut
    off when the file is opened again. `sync` makes what was appended durable (fdatasync): the batch calls
    it for the private mapping before it writes the audit rows of the files recorded there.
    """

    def __init__(self, path: Path, columns: list[str], *, mode: int = 0o644) -> None:
        self.path = path
        self.columns = columns
        self.repaired = _cut_torn_tail(path, len(columns))
        created = not path.exists()
        self._fd: int | None = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, mode)
        self._unsynced = False
        os.fchmod(self._fd, mode)  # also tightens a file an older version created with the umask's mode
        if os.fstat(self._fd).st_size == 0:
            self.append([columns])
        if created:
            self.sync()
            _fsync_folder(path.parent)

    def append(self, rows: list[list]) -> None:
        """Append `rows` as one write: all of them land, or none (and the error is raised)."""
        if not rows:
            return
        assert self._fd is not None, f"{self.path} is closed"
        data = _encode_rows(rows)
        size = os.fstat(self._fd).st_size
        try:
            view = memoryview(data)
            while view:
                written = os.write(self._fd, view)
                if written <= 0:
                    raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(self.path))
                view = view[written:]
        except OSError as error:
            with contextlib.suppress(OSError):
                os.ftruncate(self._fd, size)
            raise _with_filename(error, self.path) from None
        self._unsynced = True

    def sync(self) -> None:
        """Make every appended line durable (raises OSError, e.g. EIO or ENOSPC on some file systems)."""
        if self._fd is None or not self._unsynced:
            return
        try:
            _sync_data(self._fd)
        except OSError as error:
            raise _with_filename(error, self.path) from None
        self._unsynced = False

    def close(self) -> None:
        """Close; never raises (what could not be synced is redone on resume: its audit row was not written)."""
        if self._fd is None:
            return
        with contextlib.suppress(OSError):
            self.sync()
        os.close(self._fd)
        self._fd = None


def _with_filename(error: OSError, path: Path) -> OSError:
    if error.filename is None:
        error.filename = str(path)
    return error


def _sync_data(descriptor: int) -> None:
    """fdatasync where the system has it (the data and the size, not the times: cheaper), else fsync."""
    (getattr(os, "fdatasync", None) or os.fsync)(descriptor)


def _fsync_folder(folder: Path) -> None:
    """Make a new file's name durable too (its folder entry), where the system allows it."""
    with contextlib.suppress(OSError):
        descriptor = os.open(folder, os.O_RDONLY)
        try:
            os.fsync(descriptor)
        finally:
            os.close(descriptor)


def _cut_torn_tail(path: Path, width: int) -> bool:
    """Cut an unfinished last record (no final newline: a write cut short by a crash). True if cut."""
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        return False
    if not data or data.endswith(b"\n"):
        return False
    text = data.decode(ENCODING, ENCODING_ERRORS)
    keep = 0
    for _line, end, record in _records(text):
        if record is not None and len(record) == width and text[end - 1] == "\n":
            keep = end
    keep_bytes = len(text[:keep].encode(ENCODING, ENCODING_ERRORS))
    with path.open("r+b") as handle:
        handle.truncate(keep_bytes)
        handle.flush()
        os.fsync(handle.fileno())
    return True


def _records(text: str) -> Iterator[tuple[int, int, list[str] | None]]:
    """(first line number, end offset, fields) of each record of `text`; fields None for a damaged line.

    Why not csv.reader over the whole text: one stray quote there swallows every line after it. A record
    spans several lines only while its quotes are unbalanced (a value holding a newline); when joining lines
    never balances them or the result does not parse, only the first line is reported damaged and reading
    goes on with the next one.
    """
    lines = text.splitlines(keepends=True)
    ends = list(itertools.accumulate(len(line) for line in lines))
    start = 0
    while start < len(lines):
        stop, quotes = start, lines[start].count('"')
        while quotes % 2 and stop + 1 < len(lines):
            stop += 1
            quotes += lines[stop].count('"')
        fields = _parse_record("".join(lines[start : stop + 1])) if quotes % 2 == 0 else None
        if fields is None:
            yield start + 1, ends[start], None
            start += 1
        else:
            yield start + 1, ends[stop], fields
            start = stop + 1


def _parse_record(chunk: str) -> list[str] | None:
    try:
        parsed = list(csv.reader(io.StringIO(chunk, newline=""), strict=True))
    except csv.Error:
        return None
    if len(parsed) > 1:
        return None
    return parsed[0] if parsed else []


@dataclass
class TableRead:
    """The rows of a CSV table that parsed, and where each damaged record was skipped."""

    rows: list[dict[str, str]]
    skipped: list[str]  # "path:line: why", for the user
    columns: list[str] = field(default_factory=list)  # the header read


def read_table(path: Path, columns: list[str] | None = None) -> TableRead:
    """Read a table deidcli wrote, surviving damage: a record with the wrong number of fields, a bad quote or
    a torn tail is skipped and reported as path:line (1-based, the record's first line). Never raises on
    content; a missing file is an empty table. Names that are not UTF-8 come back as os.walk gave them."""
    if not path.exists():
        return TableRead([], [])
    text = path.read_bytes().decode(ENCODING, ENCODING_ERRORS)
    rows: list[dict[str, str]] = []
    skipped: list[str] = []
    header: list[str] | None = None
    for line, end, record in _records(text):
        if header is None:
            if record is None or (columns is not None and record[: len(columns)] != columns):
                skipped.append(f"{path}:{line}: not the expected header; table not read")
                return TableRead([], skipped)
            header = record
        elif record is None:
            skipped.append(f"{path}:{line}: damaged record skipped (unbalanced quotes)")
        elif record == []:
            pass  # a blank line
        elif len(record) != len(header):
            skipped.append(f"{path}:{line}: damaged record skipped ({len(record)} fields, {len(header)} expected)")
        elif text[end - 1] != "\n":
            skipped.append(f"{path}:{line}: unfinished last record skipped (the write was cut short)")
        else:
            rows.append(dict(zip(header, record, strict=True)))
    return TableRead(rows, skipped, header or [])


def audit_row(result: FileResult) -> list:
    values = (getattr(result, column) for column in AUDIT_COLUMNS)
    return ["" if value is None else value for value in values]


def read_audit(path: Path, skipped: list[str] | None = None) -> list[dict[str, str]]:
    """The audit's rows as text (csv module: the CLI never pays pandas' import time for this). Damaged
    records are left out and, when `skipped` is given, reported there as path:line."""
    table = read_table(path, AUDIT_COLUMNS)
    if skipped is not None:
        skipped.extend(table.skipped)
    return table.rows


def compact_audit(path: Path, order: list[str]) -> list[dict[str, str]]:
    """Keep the last row per input (resume appends rows for files redone) in discovery order; atomic."""
    rows = read_audit(path)
    if not rows:
        return rows
    latest = {row["input_id"]: row for row in rows}
    rank = {input_id: index for index, input_id in enumerate(order)}
    compacted = sorted(latest.values(), key=lambda row: rank.get(row["input_id"], len(rank)))
    temporary = path.with_suffix(".csv.tmp")
    with temporary.open("w", newline="", encoding=ENCODING, errors=ENCODING_ERRORS) as handle:
        writer = csv.DictWriter(handle, fieldnames=AUDIT_COLUMNS, lineterminator="\n")
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
    """The private folder: files.csv (input path <-> output), values.csv (original -> pseudonym), ocr_text.csv.

    Every file's record is fsync'd before the batch renames its output or writes its audit row, and each
    table gets whole lines only (see `CsvAppender`). The batch calls `sync` before it writes the audit rows
    of the files recorded since the last sync, so a crash or a full disk loses no mapping of a file the audit
    calls done. Tables are mode 0600 inside a 0700 folder.
    """

    def __init__(self, folder: Path) -> None:
        folder.mkdir(parents=True, exist_ok=True, mode=0o700)
        os.chmod(folder, 0o700)
        self.folder = folder
        self.skipped: list[str] = []  # damaged records found while reading values.csv back
        # keyed by the pseudonym too: a date's pseudonym depends on the patient (per-patient shift), so
        # (tag, original) alone kept whichever patient finished first
        self._seen_values: set[tuple[str, str, str]] = set()
        values = read_table(folder / VALUES_NAME, VALUES_COLUMNS)
        self.skipped += values.skipped
        self._seen_values.update((row["tag"], row["original"], row["pseudonym"]) for row in values.rows)
        self.files = CsvAppender(folder / FILES_NAME, FILES_COLUMNS, mode=PRIVATE_FILE_MODE)
        self.values = CsvAppender(folder / VALUES_NAME, VALUES_COLUMNS, mode=PRIVATE_FILE_MODE)
        self.ocr_text = CsvAppender(folder / OCR_TEXT_NAME, OCR_TEXT_COLUMNS, mode=PRIVATE_FILE_MODE)

    def record(self, record: PrivateRecord) -> None:
        """Append one file's private rows: values and OCR text first, files.csv last (its row says the
        file's mapping is complete); each table one whole write. Durable after the next `sync`."""
        new_values, new_keys = [], set()
        for tag, vr, original, pseudonym in record.replacements:
            if (tag, original, pseudonym) not in self._seen_values and (tag, original, pseudonym) not in new_keys:
                new_keys.add((tag, original, pseudonym))
                new_values.append([tag, keyword_for_tag(int(tag, 16)) or "", vr, original, pseudonym])
        self.values.append(new_values)
        self._seen_values |= new_keys  # only once on disk: a failed append is retried on resume
        self.ocr_text.append([[record.input_path, frame, text] for frame, text in record.masked_text])
        self.files.append([[record.input_path, record.input_id, record.output_path, record.status, record.reason]])

    @property
    def tables(self) -> tuple[CsvAppender, ...]:
        return (self.values, self.ocr_text, self.files)

    def sync(self) -> None:
        """Make every recorded line durable: values and OCR text before files.csv, which vouches for them."""
        for appender in self.tables:
            appender.sync()

    def close(self) -> None:
        for appender in self.tables:
            appender.close()
