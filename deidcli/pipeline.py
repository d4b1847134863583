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

from pydicom.dataset import Dataset
from pydicom.uid import ExplicitVRBigEndian

from deidcli.attributes import AttributeReport, apply_recipe
from deidcli.audit import FileResult, PrivateRecord
from deidcli.elements import text_of
from deidcli.errors import FileRejected, storage_error
from deidcli.keys import key_fingerprint
from deidcli.options import default_of
from deidcli.patients import OutputPatient, output_patient
from deidcli.pixels.integrity import check_pixel_integrity
from deidcli.pixels.stage import PixelStage
from deidcli.pseudonyms import Pseudonymizer
from deidcli.read import checked_sop_class, read_dicom
from deidcli.reasons import Status, status_of
from deidcli.recipe.model import Action, Recipe
from deidcli.write import (
    check_output_relative_path,
    mark_deidentified,
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
    #: SHA-256 (hex) of the temporary file's bytes, taken while writing: the release seal needs no re-read.
    sha256: str = ""


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

    def __init__(self, settings: Settings, temp_dir: Path, ocr_threads: int | None = None) -> None:
        self.settings = settings
        self.temp_dir = temp_dir
        #: OCR engine threads (None: the engine's default); a batch gives each worker its share of the cores.
        self.ocr_threads = ocr_threads
        self.fingerprint = key_fingerprint(settings.key)
        #: False where the batch syncs outputs in groups itself (same machine): see `write_temporary`.
        self.fsync_each_file = True
        self.pixels = PixelStage(self._make_scanner, settings.region_rules, settings.accept_burned_in_risk,
                                 settings.ocr_engine)
        quiet_pydicom()
        stream_pixels_in_large_chunks()

    def _make_scanner(self):
        """The OCR scanner, created on first use: header-only runs never load a model."""
        from deidcli.ocr import TextScanner, combined_authorised_words, make_detector

        authorised = combined_authorised_words(self.settings.recipe.authorised_words,
                                               self.settings.authorised_words_file)
        return TextScanner(make_detector(self.settings.ocr_engine, threads=self.ocr_threads), authorised)

    @property
    def scanner(self):
        return self.pixels.scanner

    def process(self, path: Path, relative_path: str) -> Outcome:
        started = time.perf_counter()
        result = FileResult(
            input_id=input_id(self.settings.key, relative_path),
            recipe_hash=self.settings.recipe.hash,
            key_fingerprint=self.fingerprint,
        )
        private = PrivateRecord(relative_path, result.input_id, "", "", "")
        temp_path, digest = None, ""
        try:
            temp_path, digest = self._process(path, result, private)
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
                temp_path, digest = None, ""
        result.seconds = round(time.perf_counter() - started, 4)
        private.output_path, private.status, private.reason = result.output_path, result.status, result.reason
        return Outcome(result, private, temp_path, digest)

    def _process(self, path: Path, result: FileResult, private: PrivateRecord) -> tuple[Path, str]:
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
            pseudonymizer.uid(text_of(source, keyword)) or f"NO{keyword.upper()}"
            for keyword in ("StudyInstanceUID", "SeriesInstanceUID", "SOPInstanceUID")
        )
        if not text_of(source, "SOPInstanceUID").strip():
            instance = str(target.SOPInstanceUID)  # keyed on the input path by deidentify()
        return check_output_relative_path(f"{patient}/{study}/{series}/{instance}.dcm")

    # -- pixels ---------------------------------------------------------------------------------------
    def _pixel_stage(self, source: Dataset, target: Dataset, result: FileResult, private: PrivateRecord) -> str:
        """Regions, burned-in text, overlays (deidcli.pixels.stage); returns the output transfer syntax."""
        return self.pixels.clean(source, target, result, private, self._wants_ocr(source))

    def _wants_ocr(self, source: Dataset) -> bool:
        mode = self.settings.ocr
        if mode == "never":
            return False
        if mode == "always":
            return True
        modality = str(source.get("Modality", "")).upper()
        return modality not in {m.upper() for m in self.settings.ocr_skip_modalities}


def quiet_pydicom() -> None:
    """pydicom's validation warnings quote attribute values (PHI) on stderr: keep them out of logs."""
    import warnings

    from pydicom import config

    config.settings.reading_validation_mode = config.IGNORE
    config.settings.writing_validation_mode = config.IGNORE
    warnings.filterwarnings("ignore", module=r"pydicom(\..*)?$")


#: pydicom copies a buffered element (the masked pixels, spooled to a temporary file) into the output in
#: chunks of this size; its default, 8 KiB, makes 2080 reads and writes of a 17 MB mammogram (26 ms; 6 ms
#: in 1 MiB chunks, measured).
PIXEL_COPY_CHUNK = 1 << 20


def stream_pixels_in_large_chunks() -> None:
    """Let pydicom copy buffered pixel data in PIXEL_COPY_CHUNK pieces (the bytes written are the same)."""
    from pydicom import config

    config.settings.buffered_read_size = max(config.settings.buffered_read_size, PIXEL_COPY_CHUNK)


def _patient_identity(source: Dataset) -> str:
    """The original identity that keys the per-patient date shift: ID, else name, else the study (a file
    without either is its own pseudo-patient, see `deidcli.patients`: one known date must not reveal the
    shift of every anonymous study), else nothing."""
    for keyword in ("PatientID", "PatientName", "StudyInstanceUID"):
        value = text_of(source, keyword).strip()
        if value:
            return f"{keyword}={value}"
    return ""
