"""`deid verify`: gather the run's facts, build the needles, check every output in worker processes.

Findings are printed by file and check without the values themselves (they are PHI); the full record,
values and pixel boxes included, goes to `PRIVATE_DIR/verify.json` (read by `deid report`), crops of pixel
findings to `PRIVATE_DIR/verify-crops/`.
"""

from __future__ import annotations

import json
import os
import sys
import time
from collections import defaultdict
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from tqdm import tqdm

from deidcli.verify.findings import CHECKS, Finding
from deidcli.verify.header import Context, check_file
from deidcli.verify.needles import NeedleSet, build_needles, original_values, tokens
from deidcli.verify.pixels import Reader, authorised_words, default_engine, normalise, scan_frames
from deidcli.verify.recipe_view import RecipeView
from deidcli.verify.reconcile import RUN_FILES, reconcile
from deidcli.verify.release import release_files
from deidcli.verify.sources import CROPS_DIR_NAME, VERIFY_JSON_NAME, RunFacts, SourceError, load_run_facts


@dataclass
class VerifyResult:
    findings: list[Finding]
    not_checked: list[dict]
    files_checked: int
    values_searched: int
    uids_searched: int
    engine: str
    pixels: bool
    seconds: float
    json_path: Path
    boxes: dict[str, list[dict]] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def exit_code(self) -> int:
        return 1 if self.findings else 0


@dataclass
class _Job:
    """What a worker needs, sent once (initializer) and kept in the process."""

    context: Context
    out_dir: Path
    in_dir: Path | None
    inputs: dict[str, str]  # output path -> input path (relative to IN_DIR)
    allowed: dict[str, set[str]]  # output path -> authorised words for its frames
    engine: str
    pixels: bool
    crops_dir: Path
    reader: Reader | None = None


_job: _Job | None = None


def _init_worker(job: _Job) -> None:
    global _job
    quiet_pydicom()
    _job = job


def _check_one(relative: str) -> tuple[str, list[Finding], list[dict]]:
    job = _job
    assert job is not None
    original = job.in_dir / job.inputs[relative] if job.in_dir and job.inputs.get(relative) else None
    path = job.out_dir / relative
    try:
        findings = check_file(job.context, path, relative, original)
    except Exception as error:  # noqa: BLE001 - a hostile output must not stop the scan; it is a finding
        return relative, [Finding(relative, "structure", "file", f"check failed ({type(error).__name__})")], []
    boxes: list[dict] = []
    if job.pixels:
        try:
            if job.reader is None:
                job.reader = Reader(job.engine)
            needles = job.context.needles
            pixel_findings, found = scan_frames(job.reader, path, relative, job.allowed.get(relative, set()),
                                                job.crops_dir, lambda text: needles.find_text(text))
            findings += pixel_findings
            boxes = [box.as_dict() for box in found]
        except Exception as error:  # noqa: BLE001 - frames that cannot be read cannot be vouched for
            findings.append(Finding(relative, "pixels", "pixel data", f"frames not readable ({type(error).__name__})"))
    return relative, findings, boxes


def _path_findings(needles: NeedleSet, relative: str) -> list[Finding]:
    """Original values or UIDs in an output path (folder and file names)."""
    findings = []
    encoded = relative.encode("utf-8", "surrogateescape")
    for number in needles.find_tokens(tokens(encoded)):
        needle = needles.needles[number]
        findings.append(Finding(relative, "values", "path", f"original value of {needle.source} in the path", needle.value))
    for uid in needles.find_uids(encoded):
        findings.append(Finding(relative, "values", "path", f"original UID of {needles.uids[uid]} in the path", uid))
    return findings


def _run_file_findings(needles: NeedleSet, out_dir: Path) -> list[Finding]:
    """The run's own files in OUT_DIR (audit, manifest, sums) must hold no original value either."""
    findings = []
    for name in sorted(RUN_FILES):
        path = out_dir / name
        if path.is_file():
            data = path.read_bytes()
            for number in needles.find_bytes(data):
                needle = needles.needles[number]
                findings.append(Finding(name, "values", "file", f"original value of {needle.source} found", needle.value))
            for uid in needles.find_uids(data):
                findings.append(Finding(name, "values", "file", f"original UID of {needles.uids[uid]} found", uid))
    return findings


def collect_needles(facts: RunFacts, workers: int = 1) -> NeedleSet:
    """Needles from values.csv and from the originals (their headers read in parallel on large runs)."""
    sources = []
    if facts.in_dir is not None:
        for row in facts.files:
            source = facts.in_dir / row.get("input_path", "")
            if row.get("input_path") and source.is_file() and not source.is_symlink():
                sources.append(source)
    originals = []
    if workers > 1 and len(sources) > 50:
        with ProcessPoolExecutor(workers, initializer=quiet_pydicom) as pool:
            for values in pool.map(original_values, sources, chunksize=16):
                originals += values
    else:
        for source in sources:
            originals += original_values(source)
    return build_needles(facts.values, originals)


def verify_release(out_dir: Path, private_dir: Path | None = None, *, engine: str | None = None, pixels: bool = True,
                   workers: int = 1, progress: bool = False, recipe: Path | None = None,
                   in_dir: Path | None = None) -> VerifyResult:
    """Run every check on OUT_DIR; write the findings JSON to the private folder; return the result."""
    started = time.perf_counter()
    quiet_pydicom()
    facts = load_run_facts(out_dir, private_dir, recipe, in_dir)
    needles = collect_needles(facts, workers)
    context = Context(needles, RecipeView(facts.recipe), facts.org_root)
    engine = (engine or default_engine()) if pixels else ""
    if engine == "easyocr" and default_engine() != "easyocr":
        raise SourceError("--engine easyocr needs the easyocr extra: pip install 'deidcli[easyocr]'")
    words = authorised_words(RecipeView(facts.recipe).authorised_word_lists)
    allowed = {}
    for row in facts.audit:
        spared = {normalise(t) for t in row.get("ocr_spared_text", "").split("|") if t.strip()}
        allowed[row.get("output_path", "")] = words | spared
    outputs = [r for r in release_files(facts.out_dir) if r.endswith(".dcm") and not (facts.out_dir / r).is_symlink()]
    findings = reconcile(facts) + _run_file_findings(needles, facts.out_dir)
    for relative in release_files(facts.out_dir):
        findings += _path_findings(needles, relative)
    job = _Job(context, facts.out_dir, facts.in_dir, {r["output_path"]: r["input_path"] for r in facts.files
                                                    if r.get("output_path")}, allowed, engine, pixels,
               facts.private_dir / CROPS_DIR_NAME)
    boxes: dict[str, list[dict]] = {}
    bar = tqdm(total=len(outputs), unit="file", disable=not progress, file=sys.stderr, dynamic_ncols=True)
    try:
        if workers <= 1 or len(outputs) <= 1:
            _init_worker(job)
            results = map(_check_one, outputs)
            for relative, file_findings, file_boxes in results:
                findings += file_findings
                boxes[relative] = file_boxes
                bar.update(1)
        else:
            with ProcessPoolExecutor(workers, initializer=_init_worker, initargs=(job,)) as pool:
                chunk = max(1, min(16, len(outputs) // (workers * 4)))
                for relative, file_findings, file_boxes in pool.map(_check_one, outputs, chunksize=chunk):
                    findings += file_findings
                    boxes[relative] = file_boxes
                    bar.update(1)
    finally:
        bar.close()
    findings.sort(key=lambda f: (f.file, CHECKS.index(f.check), f.place))
    result = VerifyResult(findings, needles.not_checked, len(outputs), len(needles.needles), len(needles.uids),
                          engine if pixels else "", pixels, time.perf_counter() - started,
                          facts.private_dir / VERIFY_JSON_NAME, boxes, facts.notes)
    write_json(result, facts)
    return result


def quiet_pydicom() -> None:
    """pydicom's validation warnings quote values (PHI): keep them off the terminal."""
    import warnings

    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")


def write_json(result: VerifyResult, facts: RunFacts) -> None:
    document = {
        "when": datetime.now(UTC).isoformat(timespec="seconds"),
        "out_dir": str(facts.out_dir.resolve()),
        "files_checked": result.files_checked,
        "values_searched": result.values_searched,
        "uids_searched": result.uids_searched,
        "pixels": result.pixels,
        "engine": result.engine,
        "seconds": round(result.seconds, 2),
        "findings": [f.as_dict() for f in result.findings],
        "not_checked": result.not_checked,
        "boxes": result.boxes,
        "notes": result.notes,
    }
    path = result.json_path
    temporary = path.with_name(path.name + ".tmp")
    temporary.write_text(json.dumps(document, indent=1) + "\n", encoding="utf-8")
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def summary_lines(result: VerifyResult) -> list[str]:
    """Findings by file and check, without values (PHI stays in the JSON)."""
    lines = []
    by_file: dict[str, list[Finding]] = defaultdict(list)
    for finding in result.findings:
        by_file[finding.file or "(release)"].append(finding)
    for file, file_findings in by_file.items():
        lines.append(file)
        lines += [f"  {finding.line()}" for finding in file_findings]
    counts = defaultdict(int)
    for finding in result.findings:
        counts[finding.check] += 1
    per_file = result.seconds / result.files_checked if result.files_checked else 0.0
    pixels = f"pixels read with {result.engine}" if result.pixels else "pixels not read (--no-pixels)"
    lines.append(
        f"{len(result.findings)} finding(s) in {result.files_checked} output file(s)"
        + (" (" + ", ".join(f"{check} {counts[check]}" for check in CHECKS if counts[check]) + ")" if counts else "")
        + f"; {result.values_searched} values and {result.uids_searched} UIDs searched, "
        f"{len(result.not_checked)} too short or common to search; {pixels}; "
        f"{result.seconds:.1f} s ({per_file:.2f} s/file)."
    )
    lines += [f"Note: {note}" for note in result.notes]
    lines.append(f"Details (with values: PHI): {result.json_path}")
    return lines
