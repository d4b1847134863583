"""Who a file's patient is in the output: a research ID from the study's own map, a keyed code, or a
keyed pseudo-patient for files without a PatientID.

Why a patient map: a study often hands out its own research IDs (`BREAST-0042`) and wants them in
PatientID, PatientName and the folder, not our keyed code. A patient missing from the map is quarantined
(`not_in_patient_map`): inventing an ID would put a patient in the release the study never enrolled.

Why pseudo-patients: files without PatientID used to share one NOPATIENTID folder, so different patients
looked like one, and a train/test split by patient leaked. Each such study gets its own keyed pseudo-patient
(keyed on StudyInstanceUID, else on the input path), named `NOPID.<code>` so nobody mistakes it for a
real patient, and the audit's `detail` says so.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path

from pydicom.dataset import Dataset

from deidcli.errors import FileRejected
from deidcli.options import OptionError
from deidcli.pseudonyms import Pseudonymizer
from deidcli.write import PATIENT_FOLDER_NAME

NOT_IN_PATIENT_MAP = "not_in_patient_map"
NO_PATIENT_PREFIX = "NOPID."
#: Device names Windows refuses as folder names, whatever the extension.
_RESERVED_NAMES = frozenset({"CON", "PRN", "AUX", "NUL", *(f"COM{i}" for i in range(10)),
                             *(f"LPT{i}" for i in range(10))})


@dataclass(frozen=True)
class OutputPatient:
    """The patient folder of one output, the research ID when the map gave one, and an audit note."""

    folder: str
    research_id: str = ""
    note: str = ""


def load_patient_map(path: str | Path) -> dict[str, str]:
    """Read and check a patient map: a header line, then `original PatientID,research ID` rows.

    Every problem is an OptionError before the first file (it names `--patient-map` on the command line,
    `patient_map=` through the API): a duplicate original ID, a research ID given to two patients (they
    would be merged), empty IDs, and research IDs that are not valid LO values or not safe as folder names
    (upper-case letters, digits, `.`, `-`, `_`; at most 64 characters). Messages never quote a PatientID.
    """
    path = Path(path)

    def bad(problem: str, **values: object) -> OptionError:
        return OptionError("{patient_map} {file}" + problem, file=str(path), **values)

    try:
        text = path.read_text(encoding="utf-8-sig")
    except OSError as error:
        raise bad(": cannot read ({why})", why=error.strerror or error) from error
    except UnicodeDecodeError as error:
        raise bad(": not UTF-8 text") from error
    rows = list(csv.reader(text.splitlines()))
    if len(rows) < 2:
        raise bad(": expected a header line and at least one 'PatientID,research ID' row")
    mapping: dict[str, str] = {}
    owner: dict[str, str] = {}
    for line, row in enumerate(rows[1:], start=2):
        if not row or all(not cell.strip() for cell in row):
            continue
        if len(row) != 2:
            raise bad(" line {line}: expected 2 columns (PatientID,research ID), found {found}", line=line,
                      found=len(row))
        original, research = row[0].strip(), row[1].strip()
        if not original or not research:
            raise bad(" line {line}: empty {which}", line=line, which="PatientID" if not original else "research ID")
        if not PATIENT_FOLDER_NAME.fullmatch(research) or research.split(".")[0] in _RESERVED_NAMES:
            raise bad(" line {line}: research ID {research!r} must be 1-64 upper-case letters, digits, '.', '-' "
                      "or '_', starting with a letter or digit (a valid LO value and a safe folder name "
                      "everywhere)", line=line, research=research)
        if original in mapping:
            raise bad(" line {line}: PatientID listed twice (first on an earlier line)", line=line)
        if research in owner:
            raise bad(" line {line}: research ID {research!r} given to two patients", line=line, research=research)
        mapping[original] = research
        owner[research] = original
    if not mapping:
        raise bad(": no 'PatientID,research ID' rows")
    return mapping


def output_patient(source: Dataset, pseudonymizer: Pseudonymizer, fallback_identity: str,
                   patient_map: dict[str, str] | None) -> OutputPatient:
    """The output's patient from the ORIGINAL values (never a kept value): map, keyed code or pseudo-patient."""
    patient_id = str(source.get("PatientID", "") or "").strip()
    if patient_map is not None:
        research = patient_map.get(patient_id)
        if research is None:
            raise FileRejected(NOT_IN_PATIENT_MAP, "PatientID empty" if not patient_id else "")
        return OutputPatient(research, research_id=research)
    if patient_id:
        return OutputPatient(pseudonymizer.identifier(patient_id, "LO"))
    study = str(source.get("StudyInstanceUID", "") or "").strip("\0 ")
    basis = f"study\x1f{study}" if study else f"input-path\x1f{fallback_identity}"
    code = pseudonymizer.identifier(f"no-patient-id\x1f{basis}", "LO")
    keyed_on = "StudyInstanceUID" if study else "the input path"
    return OutputPatient(NO_PATIENT_PREFIX + code, note=f"no PatientID: pseudo-patient keyed on {keyed_on}")
