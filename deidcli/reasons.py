"""Audit statuses and reason codes: the one place where each is defined and documented.

The README's table of reason codes is generated from `REASONS` (see `deid reasons`).
"""

from __future__ import annotations

from enum import StrEnum


class Status(StrEnum):
    WRITTEN = "written"
    QUARANTINED = "quarantined"
    SKIPPED = "skipped"


#: reason code -> (status it goes with, what it means). No PHI ever goes in a reason.
REASONS: dict[str, tuple[Status, str]] = {
    "ok": (Status.WRITTEN, "de-identified and written"),
    "already_done": (Status.SKIPPED, "written by an earlier run with the same recipe and key (resume)"),
    "not_dicom": (Status.SKIPPED, "not a DICOM file (no DICM preamble and not parseable as DICOM)"),
    "empty_file": (Status.SKIPPED, "zero-byte file"),
    "dicomdir": (Status.SKIPPED, "DICOMDIR media directory: holds PHI and no image; never copied"),
    "symlink_outside": (Status.SKIPPED, "symbolic link pointing outside IN_DIR; not followed"),
    "symlink_loop": (Status.SKIPPED, "symbolic link to a folder above it, or a cycle of links; not followed"),
    "symlink_folder": (Status.SKIPPED, "link to a folder inside IN_DIR; not followed (its files are processed under their own path)"),
    "symlink_broken": (Status.SKIPPED, "symbolic link to nothing"),
    "not_regular_file": (Status.SKIPPED, "a FIFO, socket or device, not a file; never read"),
    "unreadable": (Status.QUARANTINED, "file could not be opened (permissions, I/O error)"),
    "parse_failed": (Status.QUARANTINED, "DICOM structure could not be parsed (truncated, corrupt)"),
    "changed_while_read": (Status.QUARANTINED, "the file changed while it was read"),
    "gzip_wrapped": (Status.QUARANTINED, "gzip-compressed file; decompress it first"),
    "no_sop_class": (Status.QUARANTINED, "no SOPClassUID: a dataset fragment, not a composite instance"),
    "unknown_sop_class": (Status.QUARANTINED, "SOPClassUID or MediaStorageSOPClassUID is not a SOP class DICOM registers"),
    "no_pixel_module": (Status.QUARANTINED, "an image SOP class without usable pixel attributes"),
    "pixel_decode_failed": (Status.QUARANTINED, "pixel data could not be decoded"),
    "pixel_truncated": (Status.QUARANTINED, "pixel data shorter than Rows x Columns x frames needs"),
    "pixel_extra_data": (Status.QUARANTINED, "pixel data holds bytes outside its frames (after the last frame, extra frames or fragments)"),
    "pixel_encode_failed": (Status.QUARANTINED, "masked pixels could not be re-encoded losslessly"),
    "unsupported_transfer_syntax": (Status.QUARANTINED, "no decoder for this transfer syntax"),
    "unsupported_pixel_format": (Status.QUARANTINED, "pixel layout deidcli cannot mask (float data, 2 or 4 samples, odd BitsAllocated)"),
    "video_not_cleanable": (Status.QUARANTINED, "MPEG/HEVC video cannot be cleaned of burned-in text"),
    "encapsulated_document": (Status.QUARANTINED, "encapsulated PDF/CDA/STL cannot be cleaned"),
    "burned_in_unchecked": (Status.QUARANTINED, "BurnedInAnnotation YES with OCR off and no region rule"),
    "ocr_failed": (Status.QUARANTINED, "the OCR engine raised an error"),
    "ocr_timeout": (Status.QUARANTINED, "the OCR engine took longer than its budget"),
    "ocr_bad_input": (Status.QUARANTINED, "a frame the OCR engine cannot take"),
    "ocr_residual_text": (Status.QUARANTINED, "text still readable beside masked text after two residual passes"),
    "recipe_failed": (Status.QUARANTINED, "the recipe could not be applied (invalid value for VR)"),
    "write_failed": (Status.QUARANTINED, "the output could not be written (validation or I/O)"),
    "timeout": (Status.QUARANTINED, "the file took longer than the per-file time budget"),
    "too_large": (Status.QUARANTINED, "an element length exceeds the file size or the memory budget"),
    "too_deep": (Status.QUARANTINED, "sequences nested deeper than the supported depth"),
    "worker_crashed": (Status.QUARANTINED, "the worker process died on this file (e.g. a codec crashed)"),
    "not_in_patient_map": (Status.QUARANTINED, "the file's PatientID is not in --patient-map (no research ID is ever made up)"),
    "duplicate_instance": (Status.QUARANTINED, "another input already produced this SOP instance in this run"),
    "unsafe_output_path": (Status.QUARANTINED, "the output path would not be made of generated characters inside OUT_DIR"),
    "internal_error": (Status.QUARANTINED, "unexpected error; reported with its exception type only"),
}


def status_of(reason: str) -> Status:
    """The audit status a reason code implies (unknown codes are quarantines: fail closed)."""
    return REASONS.get(reason, (Status.QUARANTINED, ""))[0]
