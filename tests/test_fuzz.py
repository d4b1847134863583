"""Fuzzing: mutated real DICOM bytes, and files built with hostile UIDs, VRs and pixel lengths, either come out
de-identified and valid, or quarantined with a reason.

`make test` runs a bounded number of cases (about 60 in all); `make fuzz` runs a longer campaign
(DEID_FUZZ_EXAMPLES, split two to one between byte mutations and hostile values).
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import pydicom
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deidcli.batch import _process_with_budget
from deidcli.pipeline import Pipeline, Settings
from deidcli.reasons import REASONS
from deidcli.recipe import load_recipe
from tests.conftest import KEY, ORG_ROOT, PLANTED, planted_dataset, pydicom_file

EXAMPLES = int(os.environ.get("DEID_FUZZ_EXAMPLES", "60"))
HOSTILE_EXAMPLES = max(EXAMPLES // 3, 10)
MUTATION_EXAMPLES = max(EXAMPLES - HOSTILE_EXAMPLES, 10)


def _seed_files() -> list[bytes]:
    with tempfile.TemporaryDirectory() as folder:
        planted = Path(folder) / "planted.dcm"
        planted_dataset().save_as(planted, enforce_file_format=True)
        seeds = [planted.read_bytes()]
    for name in ("CT_small.dcm", "MR_small_RLE.dcm", "JPEG-LL.dcm"):
        seeds.append(pydicom_file(name).read_bytes())
    return seeds


SEEDS = _seed_files()
SECRETS = [PLANTED["PatientName"].encode(), PLANTED["PatientID"].encode(), b"CompressedSamples"]
PIPELINE_SETTINGS = Settings(recipe=load_recipe("default"), key=KEY, org_root=ORG_ROOT, ocr="never",
                             accept_burned_in_risk=True, file_timeout_s=20)


@st.composite
def mutated(draw) -> bytes:
    data = bytearray(draw(st.sampled_from(SEEDS)))
    for _ in range(draw(st.integers(1, 8))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "length"]))
        position = draw(st.integers(0, len(data) - 1))
        if kind == "flip":
            data[position] = draw(st.integers(0, 255))
        elif kind == "truncate":
            del data[position:]
        elif kind == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        else:  # corrupt a 4-byte length field-like region with a huge value
            data[position:position + 4] = b"\xf0\xff\xff\x7f"
        if not data:
            data = bytearray(b"\x00")
    return bytes(data)


@settings(max_examples=MUTATION_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=mutated())
def test_mutated_files_are_written_clean_or_quarantined_with_a_reason(payload):
    _check_outcome(payload, SECRETS)


def _check_outcome(payload: bytes, secrets: list[bytes]) -> None:
    """Run one file through the worker entry point; written means no secret in it and it reads back."""
    with tempfile.TemporaryDirectory() as root:
        in_dir, temp_dir = Path(root) / "in", Path(root) / "tmp"
        in_dir.mkdir()
        temp_dir.mkdir()
        source = in_dir / "fuzzed.dcm"
        source.write_bytes(payload)
        outcome = _process_with_budget(Pipeline(PIPELINE_SETTINGS, temp_dir), source, "fuzzed.dcm")
        assert outcome.result.reason in REASONS
        assert [p.name for p in in_dir.iterdir()] == ["fuzzed.dcm"]  # nothing written into IN_DIR
        assert source.read_bytes() == payload
        if outcome.result.status == "written":
            written = outcome.temp_path.read_bytes()
            for secret in secrets:
                assert secret not in written
            pydicom.dcmread(outcome.temp_path)  # the output reads back
        else:
            assert outcome.temp_path is None
            assert list(temp_dir.iterdir()) == []


# -- hostile values: UIDs, declared VRs and pixel lengths an attacker chooses ---------------------------------
UID_CANARY = "9021098765"
TEXT_CANARY = "FUZZCANARYTEXT"
HOSTILE_SECRETS = [UID_CANARY.encode(), TEXT_CANARY.encode(), *SECRETS[:2]]
_UID_KEYWORDS = ("SOPInstanceUID", "StudyInstanceUID", "SeriesInstanceUID", "FrameOfReferenceUID", "SOPClassUID",
                 "ReferencedSOPClassUID", "ReferencedSOPInstanceUID")
_DECLARED_VRS = ("OB", "UN", "LT", "LO", "SH", "UT", "PN", "DA", "UI", "SQ", "CS", "UC")
_RETYPED_TAGS = {0x00082112: "sequence", 0x0040A730: "sequence", 0x00100010: "text", 0x00081030: "text",
                 0x00080020: "text", 0x0020000D: "uid"}


@st.composite
def hostile_uid(draw) -> str:
    body = draw(st.sampled_from([
        f"1.2.840.10008.{UID_CANARY}", f"1.2.840.10008.5.1.4.1.1.{UID_CANARY}", f"1.2.3.{UID_CANARY}",
        f"1.2.840.10008.1/../../{UID_CANARY}", "1." + "9" * 300 + UID_CANARY, f"{UID_CANARY}\0.1", f"ABC.{UID_CANARY}",
    ]))
    junk = draw(st.text(alphabet="0123456789./\0 AZ", max_size=8))
    return body + junk if draw(st.booleans()) else junk + body


@st.composite
def hostile_file(draw) -> bytes:
    from pydicom.dataset import Dataset
    from pydicom.sequence import Sequence

    from tests.hostile.values_helpers import implicit_sequence_bytes, write_with_declared_vr

    dataset = planted_dataset(referenced_sop_uid="1.2.3.4")
    for _ in range(draw(st.integers(0, 2))):
        keyword, value = draw(st.sampled_from(_UID_KEYWORDS)), draw(hostile_uid())
        holder = dataset.ReferencedImageSequence[0] if keyword.startswith("Referenced") else dataset
        setattr(holder, keyword, value)
    extra = draw(st.integers(-4, 40)) if draw(st.booleans()) else 0  # half the files keep their length
    pixels = bytes(range(16))
    dataset.PixelData = pixels[:16 + extra] if extra < 0 else pixels + (TEXT_CANARY.encode() * 3)[:extra]
    code = Dataset()
    code.CodeValue, code.CodingSchemeDesignator = draw(st.sampled_from([("T-04000", "SRT"), (TEXT_CANARY, "99X")]))
    code.CodeMeaning = f"husband of {TEXT_CANARY}"
    dataset.AnatomicRegionSequence = Sequence([code])
    tag, declared = draw(st.sampled_from(sorted(_RETYPED_TAGS))), draw(st.sampled_from(_DECLARED_VRS))
    item = Dataset()
    item.PatientName, item.ReferencedSOPInstanceUID = f"{TEXT_CANARY}^WIFE", f"1.2.{UID_CANARY}"
    payload = {"sequence": implicit_sequence_bytes("SourceImageSequence", [item]),
               "text": f"{TEXT_CANARY} ".encode(), "uid": f"1.2.{UID_CANARY}".encode()}[_RETYPED_TAGS[tag]]
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "hostile.dcm"
        try:
            write_with_declared_vr(dataset, path, tag, declared, payload)
        except Exception:  # noqa: BLE001 - pydicom refuses to encode some drawn values: write them raw instead
            dataset[tag] = dataset[tag] if tag in dataset else dataset.get(tag)
            dataset.save_as(path, enforce_file_format=False)
        return path.read_bytes()


@settings(max_examples=HOSTILE_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=hostile_file())
def test_hostile_uids_vrs_and_pixel_lengths_are_written_clean_or_quarantined(payload):
    _check_outcome(payload, HOSTILE_SECRETS)
