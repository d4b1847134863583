"""Release-wide checks: every input accounted for, every output owned, nothing outside OUT_DIR, sums intact.

Inputs = written + quarantined + skipped, file by file: the audit (in OUT_DIR) and files.csv (private) must
list the same inputs with the same status, each written row's output must exist, and every file in OUT_DIR
must be a written output or one of the run's own files. When IN_DIR is still there, each of its files must
have a row (a release that silently drops files is a known failure of other tools).
"""

from __future__ import annotations

import os
from pathlib import Path

from deidcli.verify.findings import Finding
from deidcli.verify.release import SUMS_NAME, read_sums, release_files, sha256_file
from deidcli.verify.sources import AUDIT_NAME, MANIFEST_NAME, RunFacts

RUN_FILES = {AUDIT_NAME, MANIFEST_NAME, SUMS_NAME}
STATUSES = {"written", "quarantined", "skipped"}


def input_files(in_dir: Path) -> set[str]:
    """Every file under IN_DIR (relative, POSIX), as `deid run` discovers them (links included as names)."""
    found = set()
    root = in_dir.resolve()
    for folder, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames.sort()
        for name in filenames:
            found.add((Path(folder) / name).relative_to(root).as_posix())
    return found


def reconcile(facts: RunFacts) -> list[Finding]:
    findings: list[Finding] = []

    def add(file: str, place: str, message: str, value: str = "") -> None:
        findings.append(Finding(file, "reconciliation", place, message, value))

    audit = {row["input_id"]: row for row in facts.audit}
    files = {row["input_id"]: row for row in facts.files}
    if len(audit) != len(facts.audit):
        add("", AUDIT_NAME, "some inputs have more than one row (the audit was not compacted: interrupted run?)")
    for input_id, row in files.items():
        audited = audit.get(input_id)
        if audited is None:
            add(row.get("output_path", ""), f"files.csv input {input_id}", "input in the private mapping but not in the audit",
                row.get("input_path", ""))
        elif audited.get("status") != row.get("status") or audited.get("output_path", "") != row.get("output_path", ""):
            add(row.get("output_path", ""), f"input {input_id}", "audit and private mapping disagree on this input")
    for input_id, row in audit.items():
        if input_id not in files:
            add(row.get("output_path", ""), f"audit input {input_id}", "input in the audit but not in the private mapping")
        if row.get("status") not in STATUSES:
            add(row.get("output_path", ""), f"audit input {input_id}", f"unknown status {row.get('status')!r}")
    if facts.in_dir is not None:
        known = {row.get("input_path", "") for row in facts.files}
        for missing in sorted(input_files(facts.in_dir) - known):
            add("", f"IN_DIR/{missing}", "input file with no row: neither written, quarantined nor skipped", missing)
    written = {row["output_path"] for row in facts.audit if row.get("status") == "written" and row.get("output_path")}
    on_disk = set(release_files(facts.out_dir))
    for output in sorted(written - on_disk):
        add(output, "OUT_DIR", "written according to the audit, but the file is missing")
    for extra in sorted(on_disk - written - RUN_FILES):
        add(extra, "OUT_DIR", "file in OUT_DIR that no input produced")
    findings += paths_inside(facts.out_dir)
    findings += check_sums(facts.out_dir)
    return findings


def paths_inside(out_dir: Path) -> list[Finding]:
    """No link, and nothing that resolves outside OUT_DIR."""
    findings = []
    root = out_dir.resolve()
    for folder, dirnames, filenames in os.walk(out_dir, followlinks=False):
        for name in dirnames + filenames:
            path = Path(folder) / name
            relative = path.relative_to(out_dir).as_posix()
            if path.is_symlink():
                findings.append(Finding(relative, "structure", "path", "a link inside OUT_DIR"))
            elif not path.resolve().is_relative_to(root):
                findings.append(Finding(relative, "structure", "path", "resolves outside OUT_DIR"))
    return findings


def check_sums(out_dir: Path) -> list[Finding]:
    path = out_dir / SUMS_NAME
    if not path.is_file():
        return [Finding("", "sums", SUMS_NAME, "missing: the release is not sealed (re-run deid run to finish it)")]
    findings = []
    sums = read_sums(path)
    on_disk = set(release_files(out_dir))
    for relative, digest in sorted(sums.items()):
        target = out_dir / relative
        if relative not in on_disk:
            findings.append(Finding(relative, "sums", SUMS_NAME, "listed but missing"))
        elif sha256_file(target) != digest:
            findings.append(Finding(relative, "sums", SUMS_NAME, "SHA-256 differs: modified after the run"))
    for relative in sorted(on_disk - set(sums)):
        findings.append(Finding(relative, "sums", SUMS_NAME, "not listed: added after the run"))
    return findings
