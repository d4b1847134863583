"""Fuzzing: mutated real DICOM bytes either come out de-identified and valid, or quarantined with a reason.

`make test` runs a bounded number of cases; `make fuzz` runs a longer campaign (DEID_FUZZ_EXAMPLES).
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


@settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck))
@given(payload=mutated())
def test_mutated_files_are_written_clean_or_quarantined_with_a_reason(payload):
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
            for secret in SECRETS:
                assert secret not in written
            pydicom.dcmread(outcome.temp_path)  # the output reads back
        else:
            assert outcome.temp_path is None
            assert list(temp_dir.iterdir()) == []
