"""SpecificCharacterSet: only defined terms leave, and text stays labelled with the set it was read in.

The value of (0008,0005) is a free string in the file: a name fits in it. (A NUL in it makes pydicom's reader
itself raise: such a file is quarantined `parse_failed` when read.) PS3.3 C.12.1.1.2 lists the defined terms (pydicom's `python_encoding` table).
Any other value is replaced by the defined term of the codec pydicom decodes it with (a corrected spelling
such as "ISO-IR 100", else pydicom's Latin-1 fallback), so text copied byte for byte keeps its meaning.
"""

from __future__ import annotations

import codecs
import warnings
from functools import cache

from pydicom.charset import convert_encodings, default_encoding, python_encoding
from pydicom.dataset import Dataset

SPECIFIC_CHARACTER_SET = 0x00080005


def defined_character_set(values: list[str]) -> list[str]:
    """`values` with every value that is not a defined term replaced by the term pydicom decodes it as."""
    values = [value.strip(" \0") for value in values] or [""]
    if all(value in python_encoding for value in values):
        return values
    extensions = len(values) > 1  # ISO 2022 code extensions: the added terms must be "ISO 2022 IR" ones
    terms = []
    for position, value in enumerate(values):
        term = value if value in python_encoding else _term_for_codec(_decoding_codec(value), extensions)
        if term is None and position == 0:
            term = "ISO 2022 IR 100" if extensions else "ISO_IR 100"  # pydicom's fallback codec is Latin-1
        if term is not None:
            terms.append(term)
    return terms


def sanitise_read_character_set(dataset: Dataset) -> None:
    """Right after reading, before any value is decoded: give a dataset whose SpecificCharacterSet is no
    defined term the one it is decoded with, and record it as the original encoding so that values copied
    raw are written under the label that matches their bytes."""
    raw = dataset.get_item(SPECIFIC_CHARACTER_SET) if SPECIFIC_CHARACTER_SET in dataset else None
    if raw is None:
        return
    value = raw.value
    if isinstance(value, bytes | bytearray):
        value = value.decode("latin-1")
    values = value.split("\\") if isinstance(value, str) else [str(item or "") for item in value]
    terms = defined_character_set(values)
    if terms == [item.strip(" \0") for item in values]:
        return
    dataset.SpecificCharacterSet = terms if len(terms) > 1 else terms[0]
    implicit, little = dataset.original_encoding
    dataset.set_original_encoding(implicit, little, convert_encodings(terms))


def _decoding_codec(value: str) -> str:
    """The Python codec pydicom decodes with for one SpecificCharacterSet value (its fallback if unknown)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return codecs.lookup(convert_encodings([value])[0]).name
    except (LookupError, ValueError):
        return codecs.lookup(default_encoding).name


@cache
def _term_for_codec(codec: str, extensions: bool) -> str | None:
    for term, python_codec in sorted(python_encoding.items()):
        if term and term.startswith("ISO 2022") == extensions and codecs.lookup(python_codec).name == codec:
            return term
    return None
