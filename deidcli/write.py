"""Marking a dataset as de-identified, rebuilding its file meta, and writing it safely.

File meta (group 0002) is rebuilt, never copied: the source's meta can name the sending station
(SourceApplicationEntityTitle) or carry private information, and its UIDs must follow the new ones.
Writing goes to a temporary file; the batch renames it into place, so a kill at any moment leaves no
partial file under a final name, and syncs a group of renamed files before it records them.
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
import tempfile
from functools import lru_cache
from pathlib import Path
from typing import BinaryIO

from pydicom.datadict import keyword_for_tag
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.filewriter import dcmwrite
from pydicom.sequence import Sequence
from pydicom.uid import UID, ExplicitVRLittleEndian

from deidcli._version import __version__
from deidcli.datasets import empty_dataset, new_file_meta
from deidcli.elements import decoded_get
from deidcli.encode import Piece, chunks_of, encode_parts
from deidcli.errors import FileRejected
from deidcli.recipe.model import CID_7050, Recipe

#: Our implementation identity (2.25 form derived from a fixed UUID: no registered root needed).
IMPLEMENTATION_CLASS_UID = UID("2.25.259180541359470126420331287347101645347")
IMPLEMENTATION_VERSION_NAME = "DEIDCLI_" + __version__.replace(".", "")



#: One folder or file name of an output path: characters the tool generates (UID digits and dots, its token
#: alphabet), never starting with a dot, never empty. Nothing read from a file may shape a path otherwise.
_OUTPUT_NAME = re.compile(r"[0-9A-Z][0-9A-Z.]{0,99}")
#: The patient folder may also be a research ID from the user's --patient-map (validated before the first
#: file against this same pattern): upper case only, so case-insensitive filesystems never merge two patients.
PATIENT_FOLDER_NAME = re.compile(r"[0-9A-Z][0-9A-Z._-]{0,63}")
#: OUT/<patient>/<study>/<series>/<instance>.dcm
OUTPUT_PATH_DEPTH = 4


def check_output_relative_path(relative: str) -> str:
    """Refuse (quarantine) any output path not made only of generated names, four levels deep."""
    parts = relative.split("/")
    if (len(parts) != OUTPUT_PATH_DEPTH or not parts[-1].endswith(".dcm")
            or not PATIENT_FOLDER_NAME.fullmatch(parts[0])
            or not all(_OUTPUT_NAME.fullmatch(part) for part in parts[1:-1])
            or not _OUTPUT_NAME.fullmatch(parts[-1][: -len(".dcm")])):
        raise FileRejected("unsafe_output_path", "an output name holds characters the tool did not generate")
    return relative


@lru_cache(maxsize=16)
def _resolved_root(root: Path) -> Path:
    """OUT_DIR resolved once per run, not once per file. Should the folder be swapped for a link later, the
    files' folders resolve elsewhere and are refused (stricter, not looser)."""
    return root.resolve()


def resolve_inside(root: Path, relative: str, ready: set[str] | frozenset[str] = frozenset()) -> Path:
    """The final path of `relative` under `root`, checked once more after resolving links: it must lie
    inside `root` and must not be a link or anything but a regular file if it already exists.

    `ready`: the folders (relative to `root`) this run already checked and created (`mark_ready`). The
    folder is checked from `root` down: a folder in `ready` or a real (non-link) directory keeps the path
    inside `root`, and a missing one will be created by the run as a real directory, so only a link (or
    something odd) on the way costs a full resolution. Why: a realpath per file was a third of the
    parent's per-file work, and every series is a new folder. Like the root (`_resolved_root`), a folder
    the run created is trusted for the rest of the run; the final name is looked at for every file."""
    check_output_relative_path(relative)
    final = root / relative
    folder = relative.rpartition("/")[0]
    if not _folder_stays_inside(root, folder, ready) and not final.parent.resolve().is_relative_to(
            _resolved_root(root)):
        raise FileRejected("unsafe_output_path", "the output folder resolves outside OUT_DIR")
    try:
        mode = os.lstat(final).st_mode
    except OSError:
        return final  # nothing there yet (or unreadable: the rename then fails as a storage error)
    if not stat.S_ISREG(mode):
        raise FileRejected("unsafe_output_path", "the output name is taken by a link or a non-file")
    return final


def _folder_stays_inside(root: Path, folder: str, ready: set[str] | frozenset[str]) -> bool:
    """True when every component of `folder` is ready, a real directory, or not there yet (then so are the
    ones below it: the run creates them); False means "resolve it to know" (a link, a file, an error)."""
    if folder in ready:
        return True
    path, prefix = str(root), ""
    for part in folder.split("/"):
        prefix = f"{prefix}/{part}" if prefix else part
        path = f"{path}/{part}"
        if prefix in ready:
            continue
        try:
            mode = os.lstat(path).st_mode
        except FileNotFoundError:
            return True
        except OSError:
            return False
        if not stat.S_ISDIR(mode):
            return False
    return True


def mark_ready(ready: set[str], folder: str) -> None:
    """Record that `folder` (relative) and its parents exist as checked, created folders (see `resolve_inside`)."""
    parts = folder.split("/")
    ready.update("/".join(parts[:index]) for index in range(1, len(parts) + 1))


def mark_deidentified(target: Dataset, recipe: Recipe, *, dates: str, extra_codes: tuple[str, ...] = ()) -> None:
    """Add the attributes PS3.15 asks of a de-identified instance.

    `dates` is LongitudinalTemporalInformationModified: MODIFIED, UNMODIFIED or REMOVED.
    """
    _set(target, 0x00120062, "CS", "YES")  # PatientIdentityRemoved
    _set(target, 0x00120063, "LO", f"deidcli {__version__}; recipe {recipe.name} {recipe.hash}"[:64])
    codes = list(dict.fromkeys([*recipe.method_codes, *extra_codes]))
    items = [_method_code_item(code) for code in codes]
    if items:
        _set(target, 0x00120064, "SQ", Sequence(items))  # DeidentificationMethodCodeSequence
    elif "DeidentificationMethodCodeSequence" in target:
        del target.DeidentificationMethodCodeSequence
    _set(target, 0x00280303, "CS", dates)  # LongitudinalTemporalInformationModified


def _set(target: Dataset, tag: int, vr: str, value: object) -> None:
    """`target.<keyword> = value` for a dictionary attribute of this VR, without the keyword look-up when the
    attribute is new (a kept one is updated through pydicom, keeping its element as `__setattr__` does)."""
    if tag in target._dict:
        setattr(target, keyword_for_tag(tag), value)
    elif vr == "SQ":
        target[tag] = DataElement(tag, vr, value)
    else:
        element = DataElement(tag, vr, value)
        target._dict[element.tag] = element


def add_method_code(target: Dataset, code: str) -> None:
    """Append one CID 7050 code (e.g. 113101 Clean Pixel Data after masking) if not already there."""
    sequence = target.get("DeidentificationMethodCodeSequence") or Sequence()
    if any(item.get("CodeValue") == code for item in sequence):
        return
    sequence.append(_method_code_item(code))
    target.DeidentificationMethodCodeSequence = sequence


def _method_code_item(code: str) -> Dataset:
    item = empty_dataset()
    _set(item, 0x00080100, "SH", code)  # CodeValue
    _set(item, 0x00080102, "SH", "DCM")  # CodingSchemeDesignator
    _set(item, 0x00080104, "LO", CID_7050.get(code, "De-identification method"))  # CodeMeaning
    return item


#: Word size of the binary VRs whose bytes pydicom keeps raw, in the source's byte order.
_WORD_VRS = {"OW": 2, "OF": 4, "OL": 4, "OD": 8, "OV": 8}


def swap_words_to_little_endian(dataset: Dataset, skip: frozenset[int] = frozenset({0x7FE00010})) -> None:
    """Big endian sources: pydicom decodes numbers but keeps OW/OF/OL/OD/OV bytes as read, so written as
    little endian they would be garbled (overlay bitmaps, LUT data). Swap them, at every depth.
    PixelData is skipped: the pixel stage writes it from the source itself."""
    import numpy as np

    for element in dataset:
        if element.VR == "SQ":
            for item in element.value:
                swap_words_to_little_endian(item, frozenset())
        elif element.tag not in skip and element.VR in _WORD_VRS and isinstance(element.value, bytes | bytearray):
            size = _WORD_VRS[element.VR]
            whole = len(element.value) - len(element.value) % size
            swapped = np.frombuffer(element.value, dtype=f">u{size}", count=whole // size).astype(f"<u{size}")
            element.value = swapped.tobytes() + bytes(element.value[whole:])
    # Iterating decoded every raw element, so the dataset now holds little endian values only; saying so
    # keeps later readers (the overlay masker) from swapping a second time.
    dataset.set_original_encoding(False, True, dataset.original_character_set)


def build_file_meta(target: Dataset, transfer_syntax: str) -> FileMetaDataset:
    """The output's file meta, six elements. Put straight into the new FileMetaDataset's element dict (the
    same elements `meta.<keyword> = value` makes, without six keyword look-ups and group checks: a seventh
    of writing a header-only file); the tags are group 0002 by construction."""
    meta = new_file_meta()
    for tag, vr, value in (
        (0x00020001, "OB", b"\x00\x01"),  # FileMetaInformationVersion
        (0x00020002, "UI", _value(target, 0x00080016)),  # MediaStorageSOPClassUID = SOPClassUID
        (0x00020003, "UI", _value(target, 0x00080018)),  # MediaStorageSOPInstanceUID = SOPInstanceUID
        (0x00020010, "UI", UID(transfer_syntax)),  # TransferSyntaxUID
        (0x00020012, "UI", IMPLEMENTATION_CLASS_UID),  # ImplementationClassUID
        (0x00020013, "SH", IMPLEMENTATION_VERSION_NAME),  # ImplementationVersionName
    ):
        _set(meta, tag, vr, value)
    return meta


def _value(dataset: Dataset, tag: int) -> object:
    """`dataset.<keyword>` for a tag it must hold (AttributeError otherwise, as the keyword access raises)."""
    element = decoded_get(dataset, tag)
    if element is None:
        raise AttributeError(f"the dataset has no ({tag >> 16:04X},{tag & 0xFFFF:04X})")
    return element.value


def output_transfer_syntax(source_syntax: str | None) -> UID:
    """Header-only output syntax: Explicit VR Little Endian for native sources, the same for encapsulated."""
    syntax = UID(source_syntax or ExplicitVRLittleEndian)
    if not syntax.is_encapsulated or syntax.is_deflated:
        return ExplicitVRLittleEndian
    return syntax


def write_temporary(target: Dataset, transfer_syntax: str, temp_dir: Path, *, fsync: bool = True) -> tuple[Path, str]:
    """Write `target` to a fresh temporary file in `temp_dir`; return its path and the SHA-256 of its bytes.

    The digest is taken from the bytes in memory, so the batch seals the release (SHA256SUMS) without
    reading every output back at the end of the run.

    `fsync=False` on one machine: the batch renames a group of finished files to their final names, makes
    them durable together (`deidcli.batch.sync_paths`) and only then records them in the audit, so a file
    the audit calls done is on disk without one fsync per file (issue 15, group commit). Workers on other
    machines (Dask, over NFS) keep the fsync: the parent's sync cannot flush another machine's writes."""
    target.file_meta = build_file_meta(target, transfer_syntax)
    parts = encode_parts(target)  # the bytes dcmwrite would write, built faster (None: use dcmwrite)
    descriptor, name = tempfile.mkstemp(dir=temp_dir, suffix=".part")
    path = Path(name)
    try:
        with os.fdopen(descriptor, "w+b") as handle:
            if parts is None:
                # pydicom streams spooled pixel data (a cine's frames) into the file: never all in memory
                dcmwrite(handle, target, enforce_file_format=True)
                handle.flush()
                handle.seek(0)
                digest = hashlib.file_digest(handle, "sha256").hexdigest()
            else:
                digest = _write_parts(handle, parts)
            if fsync:
                handle.flush()
                os.fsync(handle.fileno())
    except BaseException:
        path.unlink(missing_ok=True)
        raise
    return path, digest


def _write_parts(handle: BinaryIO, parts: list[Piece]) -> str:
    """Write `encode_parts`' pieces to `handle` one after another; return the SHA-256 of all their bytes.

    Each piece is hashed as it is written: a spooled value (`Streamed`, a cine's or a mammogram's pixels) is read
    once, a chunk at a time, and written and hashed from the same buffer; other pieces are the bytes as they are."""
    hasher = hashlib.sha256()
    for chunk in chunks_of(parts):
        handle.write(chunk)
        hasher.update(chunk)
    return hasher.hexdigest()
