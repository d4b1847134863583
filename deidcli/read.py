"""Reading one input file, with every way a hospital folder can surprise us turned into a reason code.

Reading is where hostile input first arrives: empty files, gzip archives renamed .dcm, files without a
preamble, DICOMDIRs, files being copied while we read them. Each becomes a `FileRejected` with a reason
from `deidcli.reasons`; nothing here ever decides to write anything.
"""

from __future__ import annotations

import os
import stat
import warnings
from pathlib import Path
from typing import BinaryIO

import pydicom
from pydicom.dataset import Dataset, FileDataset
from pydicom.uid import DeflatedExplicitVRLittleEndian

from deidcli.charset import sanitise_read_character_set
from deidcli.elements import text_of
from deidcli.errors import FileRejected
from deidcli.fastread import FAST_READ_MAX_BYTES, read_file
from deidcli.pseudonyms import registered_uid_type

MEDIA_STORAGE_DIRECTORY = "1.2.840.10008.1.3.10"
_GZIP_MAGIC = b"\x1f\x8b"


def _snapshot(path: Path) -> tuple[int, int]:
    info = path.stat()
    return info.st_size, info.st_mtime_ns


def _open_regular(path: Path) -> BinaryIO:
    """Open without blocking and check what was opened: discovery saw a regular file, but it may have been
    swapped for a FIFO or a device since (a FIFO would block the worker until its time budget)."""
    descriptor = os.open(path, os.O_RDONLY | os.O_NONBLOCK)
    try:
        if not stat.S_ISREG(os.fstat(descriptor).st_mode):
            raise FileRejected("not_regular_file", "not a regular file when opened")
        return os.fdopen(descriptor, "rb")
    except BaseException:
        os.close(descriptor)
        raise


def read_dicom(path: Path) -> FileDataset:
    """Parse `path` as DICOM, or raise FileRejected with the reason it is not processable."""
    try:
        before = _snapshot(path)
        handle = _open_regular(path)
    except OSError as error:
        raise FileRejected("unreadable", os.strerror(error.errno or 0)) from error
    with handle:
        return _read_open(path, handle, before)


def _read_open(path: Path, handle: BinaryIO, before: tuple[int, int]) -> FileDataset:
    try:
        head = handle.read(132)
        handle.seek(0)
    except OSError as error:
        raise FileRejected("unreadable", os.strerror(error.errno or 0)) from error
    if before[0] == 0:
        raise FileRejected("empty_file")
    if head[:2] == _GZIP_MAGIC:
        raise FileRejected("gzip_wrapped")
    has_preamble = len(head) == 132 and head[128:132] == b"DICM"
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            # The fast reader builds what dcmread builds; None: a file it leaves to dcmread (see fastread)
            dataset = read_file(handle) if has_preamble and before[0] <= FAST_READ_MAX_BYTES else None
            if dataset is None:
                handle.seek(0)
                dataset = pydicom.dcmread(handle, force=not has_preamble)
            sanitise_read_character_set(dataset)  # before any value is decoded
        if not has_preamble and not _looks_like_dicom(dataset):
            raise FileRejected("not_dicom")
        if any("End of file" in str(w.message) or "truncat" in str(w.message).lower() for w in caught):
            raise FileRejected("parse_failed", "truncated: end of file before a delimiter")
        deflated = str(dataset.file_meta.get("TransferSyntaxUID", "")) == DeflatedExplicitVRLittleEndian
        if not deflated and _is_truncated(dataset, before[0]):  # deflated offsets count inflated bytes
            raise FileRejected("parse_failed", "truncated: the file ends inside an element")
    except FileRejected:
        raise
    except MemoryError as error:
        raise FileRejected("too_large", "an element length exceeds available memory") from error
    except RecursionError as error:
        raise FileRejected("too_deep", "sequence nesting exhausted the recursion limit") from error
    except Exception as error:  # pydicom raises many exception types on corrupt input
        reason = "parse_failed" if has_preamble else "not_dicom"
        raise FileRejected(reason, type(error).__name__) from error
    if _snapshot(path) != before:
        raise FileRejected("changed_while_read")
    sop_class = str(dataset.get("SOPClassUID", "") or dataset.file_meta.get("MediaStorageSOPClassUID", ""))
    if sop_class == MEDIA_STORAGE_DIRECTORY or "DirectoryRecordSequence" in dataset:
        raise FileRejected("dicomdir")
    if "SOPClassUID" not in dataset:
        raise FileRejected("no_sop_class")
    checked_sop_class(dataset)
    return dataset


#: (0042,0011) EncapsulatedDocument.
_ENCAPSULATED_DOCUMENT = 0x00420011


def checked_sop_class(dataset: Dataset) -> str:
    """The SOPClassUID to write, after checking the UIDs that are copied or used unchanged.

    The SOP class is copied as is, so it must be a SOP class the standard registers. Anything else (a
    private vendor class, an MRN under 1.2.840.10008, a path) is `unknown_sop_class`; so are the file
    meta UIDs (`check_file_meta_uids`). Documents and video are refused (`check_cleanable_content`).
    Details never quote the value.
    """
    value = text_of(dataset, "SOPClassUID").strip("\0 ")
    if registered_uid_type(value) != "SOP Class":
        raise FileRejected("unknown_sop_class", "SOPClassUID is not a SOP class registered by DICOM")
    check_file_meta_uids(dataset)
    check_cleanable_content(dataset, value)
    return value


def check_cleanable_content(dataset: Dataset, sop_class: str) -> None:
    """Refuse, before any work, content no stage can inspect, whatever the recipe keeps: an encapsulated
    document (PDF, CDA, STL/OBJ/MTL: its text and pictures are never read) and video (MPEG/HEVC: burned-in
    text cannot be masked frame by frame). Emptying the document instead would write a hollow instance as
    `ok` (silent loss); keeping it would release text nobody checked."""
    from deidcli.pixels.frames import ENCAPSULATED_DOCUMENT_SOP_CLASSES, VIDEO_TRANSFER_SYNTAXES

    if sop_class in ENCAPSULATED_DOCUMENT_SOP_CLASSES or _ENCAPSULATED_DOCUMENT in dataset._dict:
        raise FileRejected("encapsulated_document", "an encapsulated document cannot be cleaned")
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and text_of(meta, "TransferSyntaxUID") in VIDEO_TRANSFER_SYNTAXES:
        raise FileRejected("video_not_cleanable", "a video transfer syntax cannot be cleaned frame by frame")


def check_file_meta_uids(dataset: Dataset) -> None:
    """File meta values that decide how the file is written must be registered UIDs as well: the
    MediaStorageSOPClassUID (`unknown_sop_class`) and the TransferSyntaxUID (`unsupported_transfer_syntax`;
    it reaches the output meta and the audit's transfer_syntax_in column)."""
    meta = getattr(dataset, "file_meta", None)
    if meta is None:
        return
    media_class = text_of(meta, "MediaStorageSOPClassUID").strip("\0 ")
    if media_class and registered_uid_type(media_class) != "SOP Class":
        raise FileRejected("unknown_sop_class", "MediaStorageSOPClassUID is not a SOP class registered by DICOM")
    syntax = text_of(meta, "TransferSyntaxUID").strip("\0 ")
    if syntax and registered_uid_type(syntax) != "Transfer Syntax":
        raise FileRejected("unsupported_transfer_syntax", "TransferSyntaxUID is not a registered transfer syntax")


def _is_truncated(dataset: FileDataset, file_size: int) -> bool:
    """Whether the last element runs past the end of the file, or a partial element header follows it.

    pydicom stops silently when fewer than 8 bytes of a tag header remain, and reads short values
    without complaint; both are signs of a file cut short (an interrupted copy).
    """
    tags = list(dataset.keys())  # noqa: SIM118 - keys only: touching elements would decode them
    last = dataset.get_item(tags[-1]) if tags else None
    tell = getattr(last, "value_tell", None)
    length = getattr(last, "length", 0xFFFFFFFF)
    if tell is None or length == 0xFFFFFFFF:
        return False
    end = tell + length
    return end > file_size or 0 < file_size - end < 8


def _looks_like_dicom(dataset: FileDataset) -> bool:
    """A forced parse of random bytes yields garbage tags; real DICOM without preamble has group 0008."""
    tags = list(dataset.keys())
    return bool(tags) and any(tag.group == 0x0008 for tag in tags[:20])
