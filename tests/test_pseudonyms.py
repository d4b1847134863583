"""Keyed pseudonyms: valid per VR, deterministic per key, different across keys, intervals kept."""

from __future__ import annotations

import datetime as dt
import re

import pytest

from deidcli.errors import UsageError
from deidcli.pseudonyms import Pseudonymizer, validate_org_root
from tests.conftest import KEY, ORG_ROOT, OTHER_KEY

UID_RE = re.compile(r"^(0|[1-9][0-9]*)(\.(0|[1-9][0-9]*))*$")


@pytest.mark.parametrize("root", [ORG_ROOT, "2.25", "1.2.840.99999999999999"])
def test_uids_are_valid_and_under_the_root(root):
    pseudonymizer = Pseudonymizer(KEY, validate_org_root(root))
    for original in ("1.2.3", "1.2.840.113619.2.55.3.604688119.969.1268071029.320", "9" * 64):
        new = pseudonymizer.uid(original)
        assert len(new) <= 64 and UID_RE.match(new), new
        assert new.startswith(root + ".")


def test_without_org_root_uids_use_the_2_25_form():
    assert Pseudonymizer(KEY, validate_org_root(None)).uid("1.2.3").startswith("2.25.")


@pytest.mark.parametrize("bad", ["1.02.3", "1..2", "abc", "1.2." + "3" * 40])
def test_bad_org_roots_are_refused(bad):
    with pytest.raises(UsageError):
        validate_org_root(bad)


def test_same_key_same_value_gives_same_pseudonym_and_other_key_differs():
    first, again, other = Pseudonymizer(KEY, ORG_ROOT), Pseudonymizer(KEY, ORG_ROOT), Pseudonymizer(OTHER_KEY, ORG_ROOT)
    for method, value in ((first.uid, "1.2.3.4"), (first.person_name, "DOE^JANE")):
        name = method.__name__
        assert getattr(again, name)(value) == method(value)
        assert getattr(other, name)(value) != method(value)
    assert again.identifier("PID1", "LO") == first.identifier("PID1", "LO") != other.identifier("PID1", "LO")


def test_identifiers_fit_their_vr():
    pseudonymizer = Pseudonymizer(KEY, ORG_ROOT)
    assert len(pseudonymizer.identifier("x" * 64, "SH")) <= 16
    assert len(pseudonymizer.identifier("x", "AE")) <= 16
    assert re.fullmatch(r"[A-Z0-9 _]+", pseudonymizer.identifier("lower case id", "CS"))


def test_date_shift_is_per_patient_and_preserves_intervals():
    alice = Pseudonymizer(KEY, ORG_ROOT, (-3650, -365), patient="PatientID=ALICE")
    first, second = alice.date("20200101"), alice.date("20200315")
    interval = dt.datetime.strptime(second, "%Y%m%d") - dt.datetime.strptime(first, "%Y%m%d")
    assert interval.days == 74
    assert -3650 <= alice.day_offset() <= -365
    others = {Pseudonymizer(KEY, ORG_ROOT, (-3650, -365), patient=f"PatientID=P{i}").day_offset() for i in range(20)}
    assert len(others) > 10  # offsets differ between patients


def test_datetime_keeps_time_and_unparseable_dates_become_empty():
    pseudonymizer = Pseudonymizer(KEY, ORG_ROOT, (-10, -10), patient="p")
    assert pseudonymizer.datetime("20200111083000.000000+0100") == "20200101083000.000000+0100"
    assert pseudonymizer.date("2020-99-99") == ""


def test_ages_over_89_are_capped():
    pseudonymizer = Pseudonymizer(KEY, ORG_ROOT)
    assert pseudonymizer.age("095Y") == "090Y"
    assert pseudonymizer.age("045Y") == "045Y"


def test_standard_uids_are_never_replaced():
    pseudonymizer = Pseudonymizer(KEY, ORG_ROOT)
    assert pseudonymizer.uid("1.2.840.10008.5.1.4.1.1.2") == "1.2.840.10008.5.1.4.1.1.2"
    assert pseudonymizer.uid("1.2.840.113619.2.55") != "1.2.840.113619.2.55"


def test_token_digits_are_base_32_digits_of_the_digest():
    """`_token` reads 5 bits per letter: the same letters as repeated divmod by the alphabet's length."""
    import hashlib

    from deidcli.pseudonyms import _TOKEN_ALPHABET, _token

    for seed in range(200):
        digest = hashlib.sha256(str(seed).encode()).digest()
        for length in (1, 10, 12, 16, 51):
            number, expected = int.from_bytes(digest, "big"), []
            for _ in range(length):
                number, index = divmod(number, len(_TOKEN_ALPHABET))
                expected.append(_TOKEN_ALPHABET[index])
            assert _token(digest, length) == "".join(expected)
