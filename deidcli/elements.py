"""Reading one element of a dataset the way `Dataset.__getitem__` does, without its overhead.

Why: the attribute pass and the code-item check read thousands of elements per second; `Dataset.get` /
`__getitem__` resolves the tag, walks up the parents for the character set and goes through `__setitem__`
for every raw element it converts (a fifth of the attribute pass). These helpers convert an explicit-VR
raw element directly, with the same character set and the same converter, and leave every other case
(sequences, UN, implicit VR, the character set itself, deferred values) to pydicom.
"""

from __future__ import annotations

from functools import lru_cache

from pydicom import config as _config
from pydicom import hooks as _hooks_module
from pydicom.charset import default_encoding
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.valuerep import AMBIGUOUS_VR

_SPECIFIC_CHARACTER_SET = 0x00080005
_hooks = _hooks_module.hooks
#: pydicom's own conversion hooks: a sequence is parsed here only while they are the ones in place.
_DEFAULT_VR_HOOK, _DEFAULT_VALUE_HOOK = _hooks_module.raw_element_vr, _hooks_module.raw_element_value


def decoded(dataset: Dataset, raw: RawDataElement | DataElement) -> DataElement:
    """`dataset[raw.tag]` for an element of `dataset`: converted once (and stored back, as pydicom does)."""
    vr = raw.VR
    # Explicit VR other than SQ/UN, or implicit VR on a public, non-pixel tag (pydicom's conversion looks the
    # VR up; for such a tag `__setitem__` only stores): converted and stored as `__getitem__` would, unless
    # the VR is one pydicom treats specially (ambiguous, SQ, UN).
    if (type(raw) is RawDataElement and raw.value is not None and raw.tag != _SPECIFIC_CHARACTER_SET
            and ((vr is not None and len(vr) == 2 and vr != "SQ" and vr != "UN")
                 or (vr is None and not raw.tag >> 16 & 1 and raw.tag >> 16 != 0x7FE0))):
        element = convert_raw_data_element(raw, encoding=_encodings(dataset), ds=dataset)
        if element.VR not in AMBIGUOUS_VR and element.VR not in ("SQ", "UN"):
            dataset._dict[raw.tag] = element
            return element
    if vr == "SQ" and type(raw) is RawDataElement and raw.value and raw.is_little_endian:
        element = _sequence(dataset, raw)
        if element is not None:
            return element
    return dataset[raw.tag]


def _encodings(dataset: Dataset) -> str | list[str] | None:
    """The character set(s) pydicom decodes this dataset's values with (its own, else its parents')."""
    return dataset.original_character_set or dataset._character_set


def _sequence(dataset: Dataset, raw: RawDataElement) -> DataElement | None:
    """`dataset[raw.tag]` for a raw sequence, its items parsed by `deidcli.fastread.read_sequence_bytes` instead
    of pydicom's reader (the same items, `tests/test_fastread.py`); the element is then stored and linked
    through pydicom's own `__setitem__` and `_set_pixel_representation`, as `Dataset.__getitem__` does. None
    where pydicom's conversion is customised (hooks, callback) or the fast parser declines."""
    from deidcli.fastread import read_sequence_bytes

    if (_config.data_element_callback or _hooks.raw_element_vr is not _DEFAULT_VR_HOOK
            or _hooks.raw_element_value is not _DEFAULT_VALUE_HOOK):
        return None
    encodings = _encodings(dataset) or [default_encoding]
    value = raw.value
    sequence, _ = read_sequence_bytes(value, 0, len(value), len(value), raw.is_implicit_VR,
                                      [encodings] if isinstance(encodings, str) else encodings, raw.value_tell)
    if sequence is None:
        return None
    dataset[raw.tag] = DataElement(raw.tag, "SQ", sequence, raw.value_tell, raw.length == 0xFFFFFFFF,
                                   already_converted=True)
    element = dataset._dict[raw.tag]
    dataset._set_pixel_representation(element)
    return element


def decoded_get(dataset: Dataset, tag: int) -> DataElement | None:
    """`dataset.get(tag)` for an int tag: the decoded element, or None when absent."""
    raw = dataset._dict.get(tag)
    return None if raw is None else decoded(dataset, raw)


#: How pydicom's converters (`pydicom.values`, with `config.datetime_conversion` off) split and strip the
#: decoded text of each VR into values: "split" = strip trailing NUL/space of the whole, then split on
#: backslashes (`convert_string`); "uid" = the same, then each value stripped (`convert_UI`, `UID.__new__`); "each" = split, then strip each value's trailing NUL/space
#: (`convert_text`); "one" = a single value, trailing NUL/space stripped (`convert_single_string`); "strip" =
#: split, then strip each value (`convert_AE_string`); "name" = strip trailing NUL/space bytes, split, each
#: value a PersonName (whose str is the value itself when it has no '=' component groups).
_SPLIT_RULES = {"UI": "uid", "AS": "split", "CS": "split", "DA": "split", "DT": "split", "TM": "split",
                "LO": "each", "SH": "each", "UC": "each", "LT": "one", "ST": "one", "UT": "one",
                "AE": "strip", "PN": "name"}
#: Decoded with pydicom's default encoding whatever the character set (`convert_string` and its kin).
_DEFAULT_ENCODED = frozenset({"UI", "AS", "CS", "DA", "DT", "TM", "AE"})
_ESC = 0x1B


def ascii_texts(dataset: Dataset, raw: RawDataElement | DataElement) -> list[str] | None:
    """`[str(v) for v in values]` of the element pydicom would decode from `raw` (one value: a list of one),
    without decoding it; None where this shortcut does not apply (then decode it, see `decoded`).

    Why: the values to pseudonymise (UIDs, names, dates, IDs) are most of what the attribute pass decodes,
    and pydicom builds an element, a UID/PersonName object per value and a validation call for each, only
    for the pseudonymiser to take `str()` of it. Applies to an explicit-VR raw element of a text VR whose
    bytes are ASCII without ESC (no ISO 2022 switch) under a character set that decodes ASCII as ASCII, and
    only while pydicom's date/time conversion is off and its validation does not raise: then decoding is `bytes.decode` whatever the charset,
    and the split rules above are pydicom's own (`tests/test_elements.py` compares them on real files)."""
    rule = _SPLIT_RULES.get(raw.VR)  # type: ignore[arg-type]
    value = raw.value
    if (rule is None or type(raw) is not RawDataElement or type(value) is not bytes or not value.isascii()
            or _ESC in value or _config.datetime_conversion or raw.tag == _SPECIFIC_CHARACTER_SET
            or _config.settings.reading_validation_mode == _config.RAISE):  # pydicom would raise on a bad value
        return None
    if raw.VR not in _DEFAULT_ENCODED:
        encodings = _encodings(dataset)
        first = encodings if isinstance(encodings, str) else (encodings[0] if encodings else "iso8859")
        if not _decodes_ascii_as_ascii(first):
            return None
    if rule == "name":
        text = value.rstrip(b"\x00 ").decode("ascii")
        return None if "=" in text else text.split("\\")
    text = value.decode("ascii")
    if rule == "split":
        return text.rstrip(" \x00").split("\\")
    if rule == "uid":
        return [part.strip() for part in text.rstrip(" \x00").split("\\")]
    if rule == "each":
        return [part.rstrip("\x00 ") for part in text.split("\\")]
    if rule == "one":
        return [text.rstrip("\x00 ")]
    return [part.strip() for part in text.split("\\")]


@lru_cache(maxsize=64)
def _decodes_ascii_as_ascii(encoding: str) -> bool:
    """Whether this Python codec (a character set as pydicom names it) decodes every 7-bit byte to itself."""
    seven_bit = bytes(range(128))
    try:
        return seven_bit.decode(encoding) == seven_bit.decode("ascii")
    except (LookupError, UnicodeError):
        return False


@lru_cache(maxsize=256)
def _tag_of(keyword: str) -> int | None:
    from pydicom.datadict import tag_for_keyword

    return tag_for_keyword(keyword)


def text_of(dataset: Dataset, keyword: str) -> str:
    """`str(dataset.get(keyword, "") or "")`: one ASCII value read from its bytes (`ascii_texts`), anything
    else decoded by pydicom. Why: the output path and the patient identity read the source's UIDs and IDs,
    which the attribute pass no longer decodes (it pseudonymises them from their bytes)."""
    tag = _tag_of(keyword)
    if tag is None:
        return str(dataset.get(keyword, "") or "")
    raw = dataset._dict.get(tag)
    if raw is None:
        return ""  # absent: `Dataset.get` gives the default
    if type(raw) is DataElement:
        return str(raw.value or "")  # already decoded: `Dataset.get` gives this element's value
    texts = ascii_texts(dataset, raw)
    if texts is not None and len(texts) == 1:
        return texts[0]
    return str(dataset.get(keyword, "") or "")


def value_at(dataset: Dataset, tag: int) -> object:
    """`dataset.get(tag).value`, None when absent: the element decoded as `decoded_get` does."""
    element = decoded_get(dataset, tag)
    return None if element is None else element.value


def value_of(dataset: Dataset, keyword: str) -> object:
    """`dataset.get(keyword)` (the value, None when absent) for a dictionary keyword, read by tag through
    `decoded_get`. Why: the pixel checks read a dozen Image Pixel attributes per file, and each keyword
    access resolves the keyword and goes through `Dataset.__getitem__`."""
    tag = _tag_of(keyword)
    if tag is None:
        return dataset.get(keyword)
    return value_at(dataset, tag)
