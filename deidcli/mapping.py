"""The private mapping folder: its file names and columns (one place, shared by the writer in `audit.py`),
and the reading side of `deid mapping show|lookup|reverse`.

Why lookups normalise: a data manager types a patient's name the way the request letter spells it
(`Jane Doe`, `DOE, JANE`, `doe^jane`), never the DICOM way (`DOE^JANE`). Person names are compared as the
set of their words (case, accents, separators and the order of family and given names ignored); other
values exactly, then case-insensitively. Substring matches only on request: a short needle matches
thousands of values. Paths may be typed absolute or relative to IN_DIR/OUT_DIR: the folders a run used
are recorded in `folders.json` beside the tables.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import unicodedata
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path, PurePosixPath

FILES_NAME = "files.csv"
VALUES_NAME = "values.csv"
OCR_TEXT_NAME = "ocr_text.csv"
#: IN_DIR and OUT_DIR of each run into this private folder, for lookups by path (verify's run.json is another file).
RUNS_NAME = "folders.json"

FILES_COLUMNS = ["input_path", "input_id", "output_path", "status", "reason"]
VALUES_COLUMNS = ["tag", "keyword", "vr", "original", "pseudonym"]
OCR_TEXT_COLUMNS = ["input_path", "frame", "text"]

#: How a match was found, best first (results are sorted by it).
EXACT, NORMALISED, SUBSTRING = "exact", "normalised", "substring"
_TIERS = (EXACT, NORMALISED, SUBSTRING)
#: The columns of a lookup result, in --format csv/json and in the table.
MATCH_COLUMNS = ["match", "table", "keyword", "vr", "original", "pseudonym", "status"]


#: Told about each damaged record skipped while reading (path:line: why).
Warn = Callable[[str], None]


class MappingNotFound(Exception):
    """The folder is not a private mapping folder (no files.csv/values.csv)."""


# -- the folders a run used ----------------------------------------------------------------------------
def record_run_folders(private_dir: Path, in_dir: Path, out_dir: Path) -> bool:
    """Remember IN_DIR and OUT_DIR (absolute) so lookups accept absolute and relative paths; atomic.

    Best effort, after the batch: the tables matter, this does not (lookups fall back to matching the tail
    of a path), so a full or read-only private folder only returns False."""
    path = private_dir / RUNS_NAME
    runs = run_folders(private_dir)
    entry = {"in_dir": str(Path(in_dir).resolve()), "out_dir": str(Path(out_dir).resolve())}
    if entry in runs:
        return True
    temporary = path.with_suffix(".tmp")
    try:
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"runs": [*runs, entry]}, handle, indent=2)
            handle.write("\n")
        os.replace(temporary, path)
    except OSError:
        with contextlib.suppress(OSError):
            temporary.unlink()
        return False
    return True


def run_folders(private_dir: Path) -> list[dict[str, str]]:
    try:
        runs = json.loads((private_dir / RUNS_NAME).read_text(encoding="utf-8")).get("runs", [])
    except (OSError, ValueError, AttributeError):
        return []
    return [run for run in runs if isinstance(run, dict) and {"in_dir", "out_dir"} <= run.keys()]


# -- reading the tables --------------------------------------------------------------------------------
def read_table(private_dir: Path, name: str, warn: Warn | None = None) -> list[dict[str, str]]:
    """A mapping table's rows. A damaged record (a kill mid-write) is skipped, never fatal; `warn` is told
    where (path:line), so the user knows the answer may be incomplete."""
    from deidcli.audit import read_table as read_csv_table  # audit.py imports this module's names

    path = private_dir / name
    if not path.is_file():
        raise MappingNotFound(f"{path} not found: is {private_dir} a deid private folder?")
    columns = {FILES_NAME: FILES_COLUMNS, VALUES_NAME: VALUES_COLUMNS, OCR_TEXT_NAME: OCR_TEXT_COLUMNS}.get(name)
    table = read_csv_table(path, columns)
    for problem in table.skipped:
        if warn is not None:
            warn(problem)
    return table.rows


# -- normalisation -------------------------------------------------------------------------------------
def _fold(text: str) -> str:
    """Case- and accent-insensitive form: `Müller` and `MULLER` compare equal."""
    decomposed = unicodedata.normalize("NFKD", text)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold().strip()


def name_words(value: str) -> list[frozenset[str]]:
    """A person name as word sets, one per component group (alphabetic, ideographic, phonetic): order and
    separators (`^`, `,`, spaces, dots, hyphens) do not count, so `Jane Doe` = `DOE, JANE` = `DOE^JANE`."""
    groups = value.split("=") if "=" in value else [value]
    words = [frozenset(w for w in re.split(r"[\s^,.\-]+", _fold(group)) if w) for group in groups]
    return [group for group in words if group]


def _path_parts(value: str) -> tuple[str, ...]:
    return PurePosixPath(value.replace("\\", "/")).parts


@dataclass
class Match:
    """One lookup hit: a value pair (values.csv) or a file pair (files.csv)."""

    match: str
    table: str
    keyword: str
    vr: str
    original: str
    pseudonym: str
    status: str = ""

    def row(self) -> list[str]:
        return [getattr(self, column) for column in MATCH_COLUMNS]


def _value_tier(needle: str, value: str, vr: str, substring: bool) -> str | None:
    if not value.strip():
        return None
    if value.strip() == needle.strip():
        return EXACT
    if _fold(value) == _fold(needle):
        return NORMALISED
    if vr == "PN":
        wanted = name_words(needle)
        if wanted and any(group == wanted[0] for group in name_words(value)):
            return NORMALISED
    if substring and _fold(needle) and _fold(needle) in _fold(value):
        return SUBSTRING
    return None


def _relative_candidates(needle: str, private_dir: Path, folder_key: str) -> set[str]:
    """The needle as a path relative to each recorded IN_DIR (or OUT_DIR): typed absolute, relative to the
    current folder, or already relative to the run's folder."""
    candidates = {PurePosixPath(*_path_parts(needle)).as_posix()} if _path_parts(needle) else set()
    typed = Path(needle).expanduser()
    absolute = typed if typed.is_absolute() else Path.cwd() / typed
    for run in run_folders(private_dir):
        root = Path(run[folder_key])
        for path in {absolute, Path(os.path.abspath(absolute))}:
            try:
                candidates.add(path.relative_to(root).as_posix())
            except ValueError:
                continue
            try:
                candidates.add(path.resolve().relative_to(root.resolve()).as_posix())
            except (ValueError, OSError):
                continue
    return candidates


def _path_tier(needle: str, value: str, candidates: set[str], substring: bool) -> str | None:
    if not value:
        return None
    if value in candidates:
        return EXACT
    parts, wanted = _path_parts(value), _path_parts(needle)
    if wanted and len(wanted) <= len(parts) and parts[-len(wanted):] == wanted:
        return NORMALISED  # the tail of the path, whole components (`b.dcm`, `patient1/b.dcm`)
    if len(wanted) > len(parts) and wanted[-len(parts):] == parts:
        return NORMALISED  # an absolute path whose run folder is not recorded (older private folders)
    if substring and needle in value:
        return SUBSTRING
    return None


def lookup(private_dir: Path, needle: str, *, reverse: bool = False, substring: bool = False,
           warn: Warn | None = None) -> list[Match]:
    """Value pairs and file pairs matching `needle`: an original value or input path (`reverse=False`), or a
    pseudonym or output path (`reverse=True`). Exact matches first; substring matches only when asked."""
    values = read_table(private_dir, VALUES_NAME, warn)
    files = read_table(private_dir, FILES_NAME, warn)
    column = "pseudonym" if reverse else "original"
    matches: list[Match] = []
    for row in values:
        tier = _value_tier(needle, row[column], row["vr"], substring)
        if tier:
            matches.append(Match(tier, "values", row["keyword"] or row["tag"], row["vr"], row["original"],
                                 row["pseudonym"]))
    path_column = "output_path" if reverse else "input_path"
    candidates = _relative_candidates(needle, private_dir, "out_dir" if reverse else "in_dir")
    for row in files:
        tier = _path_tier(needle, row[path_column], candidates, substring)
        if tier:
            matches.append(Match(tier, "files", "(file)", "", row["input_path"], row["output_path"],
                                 f"{row['status']} {row['reason']}".strip()))
    best = {tier: index for index, tier in enumerate(_TIERS)}
    return sorted(matches, key=lambda match: best[match.match])


# -- formatting ----------------------------------------------------------------------------------------
def format_rows(columns: list[str], rows: list[list[str]], fmt: str, width: int | None = None) -> str:
    """Rows as `table` (fitted to `width` columns: the widest cells are shortened in the middle), `csv`
    or `json` (full values, for scripts)."""
    if fmt == "csv":
        import io

        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows(rows)
        return buffer.getvalue().rstrip("\n")
    if fmt == "json":
        return json.dumps([dict(zip(columns, row, strict=True)) for row in rows], indent=2, ensure_ascii=False)
    return _table(columns, rows, width or 10_000)


def _shorten(text: str, width: int) -> str:
    if len(text) <= width:
        return text
    keep = width - 1
    return text[: (keep + 1) // 2] + "…" + text[len(text) - keep // 2:]


def _table(columns: list[str], rows: list[list[str]], width: int) -> str:
    gap = 2
    widths = [max([len(column)] + [len(row[i]) for row in rows]) for i, column in enumerate(columns)]
    minimum = [min(len(column), w) for column, w in zip(columns, widths, strict=True)]
    shortened = False
    while sum(widths) + gap * (len(widths) - 1) > width:
        widest = max(range(len(widths)), key=lambda i: widths[i] - max(minimum[i], 8))
        if widths[widest] <= max(minimum[widest], 8):
            break  # cannot shrink further: the terminal is narrower than every column's minimum
        widths[widest] -= 1
        shortened = True
    lines = ["  ".join(column.ljust(w) for column, w in zip(columns, widths, strict=True)).rstrip()]
    for row in rows:
        lines.append("  ".join(_shorten(cell, w).ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip())
    if shortened:
        lines.append("(cells cut with … to fit; --format csv shows them whole)")
    return "\n".join(lines)


def matches_as_text(matches: list[Match], fmt: str, width: int | None = None) -> str:
    if fmt == "json":
        return json.dumps([asdict(match) for match in matches], indent=2, ensure_ascii=False)
    return format_rows(MATCH_COLUMNS, [match.row() for match in matches], fmt, width)
