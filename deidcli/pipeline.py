"""One file in, one result out: read -> attributes (recipe) -> pixels (regions, OCR, mask) -> write.

The pipeline composes the recipe engine, the pixel rewriter and the OCR scanner; none of them knows
about the others. Whatever goes wrong becomes a `FileResult` with a reason code: the pipeline never
raises for a bad file and never writes one half-cleaned (the temporary file is only renamed into
place by the batch once everything succeeded).
"""

from __future__ import annotations

import hashlib
import hmac
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRBigEndian

from deidcli.attributes import AttributeReport, apply_recipe
from deidcli.audit import FileResult, PrivateRecord
from deidcli.errors import FileRejected, storage_error
from deidcli.geometry import Rect
from deidcli.keys import key_fingerprint
from deidcli.options import default_of
from deidcli.patients import OutputPatient, output_patient
from deidcli.pixels.integrity import check_pixel_integrity
from deidcli.pseudonyms import Pseudonymizer
from deidcli.read import checked_sop_class, read_dicom
from deidcli.reasons import Status, status_of
from deidcli.recipe.model import Action, Recipe
from deidcli.write import (
    add_method_code,
    check_output_relative_path,
    mark_deidentified,
    output_transfer_syntax,
    swap_words_to_little_endian,
    write_temporary,
)


@dataclass
class Settings:
    """Everything a worker needs, picklable: sent once to each worker process."""

    recipe: Recipe
    key: bytes
    org_root: str
    ocr: str = default_of("ocr")
    ocr_engine: str = default_of("ocr_engine")
    ocr_skip_modalities: tuple[str, ...] = default_of("ocr_skip_modalities")
    accept_burned_in_risk: bool = default_of("accept_burned_in_risk")
    region_rules: list = field(default_factory=list)  # list[deidcli.pixels.RegionRule], loaded from the file
    authorised_words_file: str | None = default_of("authorised_words")
    file_timeout_s: float = default_of("file_timeout_s")
    patient_map: dict[str, str] | None = None  # original PatientID -> research ID, loaded from the file


@dataclass
class Outcome:
    """What processing one file produced: the audit row, the private record, the temp file to rename."""

    result: FileResult
    private: PrivateRecord
    temp_path: Path | None = None


def input_id(key: bytes, relative_path: str) -> str:
    """A keyed, non-reversible id for an input path: safe in the audit, linkable through the mapping."""
    return hmac.new(key, f"input-path\x1f{relative_path}".encode("utf-8", "surrogateescape"), hashlib.sha256).hexdigest()[:20]


def unprocessed_outcome(settings: Settings, relative_path: str, reason: str, detail: str = "") -> Outcome:
    """The outcome of a file that never went through the pipeline (skipped, timed out, crashed its worker)."""
    result = FileResult(input_id=input_id(settings.key, relative_path), status=status_of(reason).value,
                        reason=reason, detail=detail, recipe_hash=settings.recipe.hash,
                        key_fingerprint=key_fingerprint(settings.key))
    return Outcome(result, PrivateRecord(relative_path, result.input_id, "", result.status, reason))


class Pipeline:
    """Holds what is loaded once per worker (recipe indexes, the OCR model) and processes files."""

    def __init__(self, settings: Settings, temp_dir: Path) -> None:
        self.settings = settings
        self.temp_dir = temp_dir
        self.fingerprint = key_fingerprint(settings.key)
        self._scanner = None
        #: False where the batch syncs outputs in groups itself (same machine): see `write_temporary`.
        self.fsync_each_file = True
        quiet_pydicom()

    # -- the OCR scanner is created on first use: header-only runs never load a model ---------------
    @property
    def scanner(self):
        if self._scanner is None:
            from deidcli.ocr import TextScanner, combined_authorised_words, make_detector

            authorised = combined_authorised_words(self.settings.recipe.authorised_words,
                                                   self.settings.authorised_words_file)
            self._scanner = TextScanner(make_detector(self.settings.ocr_engine), authorised)
        return self._scanner

    def process(self, path: Path, relative_path: str) -> Outcome:
        started = time.perf_counter()
        result = FileResult(
            input_id=input_id(self.settings.key, relative_path),
            recipe_hash=self.settings.recipe.hash,
            key_fingerprint=self.fingerprint,
        )
        private = PrivateRecord(relative_path, result.input_id, "", "", "")
        temp_path = None
        try:
            temp_path = self._process(path, result, private)
            result.status, result.reason = Status.WRITTEN.value, "ok"
        except FileRejected as rejection:
            result.status, result.reason, result.detail = status_of(rejection.reason).value, rejection.reason, rejection.detail
        except OSError as error:
            failure = storage_error(error)
            if failure is not None:  # the disk, not the file: the batch stops (exit 4)
                raise failure from None
            result.status, result.reason, result.detail = Status.QUARANTINED.value, "write_failed", type(error).__name__
        except MemoryError:
            result.status, result.reason = Status.QUARANTINED.value, "too_large"
        except RecursionError:
            result.status, result.reason = Status.QUARANTINED.value, "too_deep"
        except Exception as error:  # noqa: BLE001 - one bad file must never stop the batch
            result.status, result.reason, result.detail = Status.QUARANTINED.value, "internal_error", type(error).__name__
        if result.status != Status.WRITTEN.value:
            result.output_path = ""
            private.replacements.clear()
            private.masked_text.clear()
            if temp_path is not None:
                temp_path.unlink(missing_ok=True)
                temp_path = None
        result.seconds = round(time.perf_counter() - started, 4)
        private.output_path, private.status, private.reason = result.output_path, result.status, result.reason
        return Outcome(result, private, temp_path)

    def _process(self, path: Path, result: FileResult, private: PrivateRecord) -> Path:
        source = read_dicom(path)
        target, syntax = self.clean(source, result, private)
        patient = self._output_patient(source, target, private)
        result.detail = patient.note
        result.output_path = self.output_relative_path(source, target, patient.folder)
        return write_temporary(target, syntax, self.temp_dir, fsync=self.fsync_each_file)

    def clean(self, source: Dataset, result: FileResult, private: PrivateRecord) -> tuple[Dataset, str]:
        """Attributes, then pixels: the de-identified dataset and its transfer syntax (not yet written).

        The one path both `deid run` and `deidcli.deidentify` take, so a dataset is never marked
        PatientIdentityRemoved with its burned-in text still in the pixels.
        """
        target, report = self.deidentify(source, fallback_identity=private.input_path)
        check_pixel_integrity(source, target)
        result.kept, result.removed, result.emptied, result.pseudonymised = (
            report.kept, report.removed, report.emptied, report.pseudonymised
        )
        private.replacements = [(f"{r.tag:08x}", r.vr, r.original, r.pseudonym) for r in report.replacements]
        if str(source.file_meta.get("TransferSyntaxUID", "")) == ExplicitVRBigEndian:
            swap_words_to_little_endian(target)
        return target, self._pixel_stage(source, target, result, private)

    def _output_patient(self, source: Dataset, target: Dataset, private: PrivateRecord) -> OutputPatient:
        """Who the patient is in the output. A research ID from --patient-map replaces PatientID and
        PatientName (and their keyed pseudonyms in the mapping); a pseudo-patient of a file without PatientID
        becomes its PatientID where the recipe pseudonymises PatientID, so a split by PatientID keeps it apart."""
        pseudonymizer = Pseudonymizer(self.settings.key, self.settings.org_root)
        patient = output_patient(source, pseudonymizer, private.input_path, self.settings.patient_map)
        if patient.research_id:
            names = {"00100020": ("LO", "PatientID"), "00100010": ("PN", "PatientName")}
            private.replacements = [r for r in private.replacements if r[0] not in names]
            for tag, (vr, keyword) in names.items():
                original = str(source.get(keyword, "") or "").strip()
                setattr(target, keyword, patient.research_id)
                if original:
                    private.replacements.append((tag, vr, original, patient.research_id))
        elif patient.note:
            rule = self.settings.recipe.general_rule(0x00100020, None)
            if rule is not None and rule.action is Action.PSEUDONYMISER:
                target.PatientID = patient.folder
        return patient

    # -- attributes ---------------------------------------------------------------------------------
    def deidentify(self, source: Dataset, fallback_identity: str = "") -> tuple[Dataset, AttributeReport]:
        """Apply the recipe and the PS3.15 marks; the SOP identity every instance needs is guaranteed.

        An instance without SOPInstanceUID gets one keyed on `fallback_identity` (the input's relative
        path in a batch), so two such files never share a UID.
        """
        recipe = self.settings.recipe
        pseudonymizer = Pseudonymizer(
            self.settings.key, self.settings.org_root, recipe.date_shift_days, patient=_patient_identity(source)
        )
        target, report = apply_recipe(source, recipe, pseudonymizer)
        target.SOPClassUID = checked_sop_class(source)
        if not str(target.get("SOPInstanceUID", "")).strip():
            original = str(source.get("SOPInstanceUID", "") or "").strip()
            target.SOPInstanceUID = pseudonymizer.uid(original or f"no-sop-instance-uid:{fallback_identity}")
        dates = "MODIFIED" if report.dates_shifted else ("REMOVED" if report.dates_removed else "UNMODIFIED")
        mark_deidentified(target, recipe, dates=dates)
        return target, report

    def output_relative_path(self, source: Dataset, target: Dataset, patient: str) -> str:
        """OUT/<patient>/<study>/<series>/<instance>.dcm from keyed pseudonyms of the original values
        only (never a kept original, whatever the recipe keeps), or the study's research ID: no PHI in paths."""
        pseudonymizer = Pseudonymizer(self.settings.key, self.settings.org_root)
        study, series, instance = (
            pseudonymizer.uid(str(source.get(keyword, "") or "")) or f"NO{keyword.upper()}"
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        )
        if not str(source.get("SOPInstanceUID", "") or "").strip():
            instance = str(target.SOPInstanceUID)  # keyed on the input path by deidentify()
        return check_output_relative_path(f"{patient}/{study}/{series}/{instance}.dcm")

    # -- pixels ---------------------------------------------------------------------------------------
    def _pixel_stage(self, source: Dataset, target: Dataset, result: FileResult, private: PrivateRecord) -> str:
        """Mask known regions and burned-in text; return the output transfer syntax."""
        source_syntax = str(source.file_meta.get("TransferSyntaxUID", "")) or None
        target.file_meta = FileMetaDataset()  # the pixel rewriter records the output syntax here
        if "PixelData" not in source or "PixelData" not in target:
            return output_transfer_syntax(source_syntax)
        from deidcli.pixels import (
            check_pixels_cleanable,
            copy_pixels_untouched,
            match_regions,
            rewrite_pixels,
        )

        check_pixels_cleanable(source)
        regions = match_regions(source, self.settings.region_rules) if self.settings.region_rules else []
        run_ocr = self._wants_ocr(source)
        if not run_ocr and not regions:
            burned_in = str(source.get("BurnedInAnnotation", "")).upper()
            if burned_in == "YES" and not self.settings.accept_burned_in_risk:
                raise FileRejected("burned_in_unchecked", "BurnedInAnnotation YES, OCR off, no region rule")
            report = copy_pixels_untouched(source, target)
        else:
            frame_scan = _FrameScanner(self, source, regions, run_ocr, result, private)
            report = rewrite_pixels(source, target, frame_scan)
            self._overlay_stage(target, frame_scan, run_ocr)
            if run_ocr:
                target.BurnedInAnnotation = "NO"
                add_method_code(target, "113101")
        result.frames = report.frames
        result.pixels_changed = report.pixels_changed
        result.rects_masked = report.rects_masked
        result.transfer_syntax_in = report.transfer_syntax_in
        result.transfer_syntax_out = report.transfer_syntax_out
        result.decode_seconds = round(report.decode_seconds, 4)
        result.encode_seconds = round(report.encode_seconds, 4)
        return report.transfer_syntax_out

    def _overlay_stage(self, target: Dataset, frame_scan: _FrameScanner, run_ocr: bool) -> None:
        """Overlay planes a recipe kept can carry text too: blank what was blanked in the image, and
        what OCR reads in the overlay bitmaps themselves."""
        from deidcli.pixels import mask_overlays, overlay_images

        if not any(0x6000 <= tag.group <= 0x601E and tag.element == 0x3000 for tag in target.keys()):  # noqa: SIM118
            return
        rects = list(frame_scan.all_rects)
        if run_ocr:
            for _, image in overlay_images(target):
                rects.extend(self.scanner.scan(image, "MONOCHROME2", 8).masked)
        if rects:
            mask_overlays(target, rects)

    def _wants_ocr(self, source: Dataset) -> bool:
        mode = self.settings.ocr
        if mode == "never":
            return False
        if mode == "always":
            return True
        modality = str(source.get("Modality", "")).upper()
        return modality not in {m.upper() for m in self.settings.ocr_skip_modalities}


class _FrameScanner:
    """The `rects_for_frame` callback: regions plus OCR boxes, OCR skipped only for identical frames."""

    def __init__(self, pipeline: Pipeline, source: Dataset, regions: list[Rect], run_ocr: bool,
                 result: FileResult, private: PrivateRecord) -> None:
        self.pipeline = pipeline
        self.source = source
        self.regions = regions
        self.run_ocr = run_ocr
        self.result = result
        self.private = private
        self.cache: dict[bytes, list[Rect]] = {}
        self.all_rects: set[Rect] = set()  # every rectangle blanked on any frame (for overlay planes)
        self.spared: set[str] = set()
        if run_ocr:
            result.ocr_engine = pipeline.settings.ocr_engine

    def __call__(self, index: int, frame: np.ndarray) -> list[Rect]:
        regions = self._regions_for(index)
        if not self.run_ocr:
            self.all_rects.update(regions)
            return regions
        digest = hashlib.blake2b(np.ascontiguousarray(frame).data, digest_size=16).digest()
        cached = self.cache.get(digest)
        if cached is None:
            cached = self._scan(index, frame)
            self.cache[digest] = cached
        self.all_rects.update(regions)
        self.all_rects.update(cached)
        return regions + cached

    def _regions_for(self, index: int) -> list[Rect]:
        """The region rules' rectangles for this frame: a rule with `frames` applies to those frames only."""
        if not self.regions:
            return []
        from deidcli.pixels import match_regions

        return match_regions(self.source, self.pipeline.settings.region_rules, frame=index)

    def _scan(self, index: int, frame: np.ndarray) -> list[Rect]:
        source = self.source
        photometric = str(source.get("PhotometricInterpretation", "MONOCHROME2"))
        if photometric == "PALETTE COLOR":
            from pydicom.pixels import apply_color_lut

            frame = apply_color_lut(frame, source)
            frame = (frame >> 8).astype(np.uint8) if frame.dtype != np.uint8 else frame
            photometric = "RGB"
        elif frame.ndim == 3:
            photometric = "RGB"
        scan = self.pipeline.scanner.scan(
            frame, photometric, int(source.get("BitsStored", 8)), bool(source.get("PixelRepresentation", 0))
        )
        result = self.result
        result.ocr_boxes_found += scan.boxes_found
        result.ocr_boxes_masked += len(scan.masked)
        result.ocr_boxes_spared += len(scan.spared)
        result.ocr_seconds = round(result.ocr_seconds + scan.seconds, 4)
        if scan.lowest_confidence is not None:
            lowest = result.ocr_lowest_confidence
            result.ocr_lowest_confidence = round(
                scan.lowest_confidence if lowest is None else min(lowest, scan.lowest_confidence), 4
            )
        for _, text in scan.spared:
            self.spared.add(text)
        result.ocr_spared_text = "|".join(sorted(self.spared))
        self.private.masked_text.extend((index, text) for text in scan.recognised_masked_text if text.strip())
        return list(scan.masked)


def quiet_pydicom() -> None:
    """pydicom's validation warnings quote attribute values (PHI) on stderr: keep them out of logs."""
    import warnings

    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")


def _patient_identity(source: Dataset) -> str:
    """The original identity that keys the per-patient date shift: ID, else name, else the study (a file
    without either is its own pseudo-patient, see `deidcli.patients`: one known date must not reveal the
    shift of every anonymous study), else nothing."""
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID"):
        value = str(source.get(keyword, "") or "").strip()
        if value:
            return f"{keyword}={value}"
    return ""
