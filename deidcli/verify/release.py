"""Sealing a release: `OUT_DIR/SHA256SUMS` of every output, and the run facts verify needs, in the private folder.

`deid run` calls `seal_release` once, after the audit is compacted, so the sums cover the final files.
SHA256SUMS is in `sha256sum` format (`sha256sum -c SHA256SUMS` works in OUT_DIR) so a recipient can check
the release without deidcli. The run facts (`release.json`: IN_DIR and the recipe as JSON) go to the private
folder: IN_DIR's path may itself name a patient, and verify/report need it to find the originals.
"""

from __future__ import annotations

import hashlib
import json
import os
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

SUMS_NAME = "SHA256SUMS"
RUN_FACTS_NAME = "release.json"  # not run.json: the mapping reader owns that name
#: Names in OUT_DIR that are never outputs to seal (the sums themselves, a killed run's scratch folder).
UNSEALED = {SUMS_NAME, ".deid-tmp"}


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def release_files(out_dir: Path) -> list[str]:
    """Every regular file under OUT_DIR (relative, POSIX, sorted), links not followed, sums excluded."""
    return sorted(relative for relative, _ in _release_entries(out_dir))


def _release_entries(out_dir: Path) -> list[tuple[str, bool]]:
    """(relative path, is a regular file, not a link) of every non-folder entry under OUT_DIR, as
    `os.walk(followlinks=False)` lists files (a link to a folder is neither walked nor listed; a folder that
    cannot be read is passed over), from `os.scandir` alone: no second system call per file."""
    found: list[tuple[str, bool]] = []
    folders = [(str(out_dir), "")]
    while folders:
        folder, prefix = folders.pop()
        try:
            with os.scandir(folder) as entries:
                for entry in entries:
                    relative = prefix + entry.name
                    if relative in UNSEALED:
                        continue
                    try:
                        is_folder = entry.is_dir()
                    except OSError:
                        is_folder = False
                    if not is_folder:
                        found.append((relative, _is_regular(entry)))
                    elif not entry.is_symlink():
                        folders.append((entry.path, relative + "/"))
        except OSError:
            continue
    return found


def _is_regular(entry: os.DirEntry) -> bool:
    try:
        return entry.is_file(follow_symlinks=False)
    except OSError:
        return False


def write_sums(out_dir: Path, known: dict[str, str] | None = None) -> Path:
    """Write OUT_DIR/SHA256SUMS atomically (temp + rename).

    `known`: relative path -> digest of the bytes this run wrote there (hashed by the worker from the bytes
    it encoded), so the end of a run reads back only what it did not write itself. A file an earlier run
    wrote keeps the digest the previous SHA256SUMS gave it unless it was modified since (an mtime not older
    than those sums: hashed again). A stale digest could never hide a change: it would only make
    `sha256sum -c` report the file, which is what a changed release file deserves.
    """
    path = out_dir / SUMS_NAME
    known = dict(known or {})
    _reuse_previous_sums(path, known)
    # Links and anything but a regular file (a FIFO would block the hash forever) get no sum: `deid verify`
    # reports them as files no input produced.
    files = sorted(relative for relative, regular in _release_entries(out_dir) if regular)
    unknown = [relative for relative in files if relative not in known]
    if len(unknown) > 4:
        with ThreadPoolExecutor(max_workers=min(8, (os.cpu_count() or 1) + 1)) as pool:  # hashlib frees the GIL
            known.update(zip(unknown, pool.map(lambda relative: sha256_file(out_dir / relative), unknown),
                             strict=True))
    else:
        known.update((relative, sha256_file(out_dir / relative)) for relative in unknown)
    lines = [f"{known[relative]}  {relative}\n" for relative in files]
    temporary = path.with_name(SUMS_NAME + ".tmp")
    temporary.write_text("".join(lines), encoding="utf-8")
    os.replace(temporary, path)
    return path


#: Run files rewritten by every run: never taken from earlier sums (their mtime may not move within a second).
_ALWAYS_HASHED = {"audit.csv", ".deid-run.json"}


def _reuse_previous_sums(path: Path, known: dict[str, str]) -> None:
    """Add to `known` the earlier SHA256SUMS' digests of outputs not modified after it was written."""
    try:
        sealed = path.stat().st_mtime_ns
        previous = read_sums(path)
    except (OSError, UnicodeDecodeError):
        return
    for relative, digest in previous.items():
        if relative in known or relative in _ALWAYS_HASHED or len(digest) != 64:
            continue
        try:
            info = (path.parent / relative).lstat()
        except OSError:
            continue
        if info.st_mtime_ns < sealed:
            known[relative] = digest


def read_sums(path: Path) -> dict[str, str]:
    """relative path -> sha256 hex, from a sha256sum-format file."""
    sums: dict[str, str] = {}
    for line in path.read_text(encoding="utf-8").splitlines():
        digest, _, relative = line.partition("  ")
        if digest and relative:
            sums[relative.lstrip("*")] = digest.strip().lower()
    return sums


def seal_release(out_dir: Path, private_dir: Path, *, in_dir: Path, recipe: dict,
                 known: dict[str, str] | None = None) -> None:
    """The end-of-run hook: run facts into the private folder, then the sums of OUT_DIR (`known`: the digests
    of the outputs this run wrote, see `write_sums`)."""
    facts = {"in_dir": str(Path(in_dir).resolve()), "recipe": recipe}
    temporary = private_dir / (RUN_FACTS_NAME + ".tmp")
    temporary.write_text(json.dumps(facts, indent=1) + "\n", encoding="utf-8")
    os.replace(temporary, private_dir / RUN_FACTS_NAME)
    write_sums(out_dir, known)
