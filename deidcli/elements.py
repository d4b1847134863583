"""Reading one element of a dataset the way `Dataset.__getitem__` does, without its overhead.

Why: the attribute pass and the code-item check read thousands of elements per second; `Dataset.get` /
`__getitem__` resolves the tag, walks up the parents for the character set and goes through `__setitem__`
for every raw element it converts (a fifth of the attribute pass). These helpers convert an explicit-VR
raw element directly, with the same character set and the same converter, and leave every other case
(sequences, UN, implicit VR, the character set itself, deferred values) to pydicom.
"""

from __future__ import annotations

from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.valuerep import AMBIGUOUS_VR

_SPECIFIC_CHARACTER_SET = 0x00080005


def decoded(dataset: Dataset, raw: RawDataElement | DataElement) -> DataElement:
    """`dataset[raw.tag]` for an element of `dataset`: converted once (and stored back, as pydicom does)."""
    vr = raw.VR
    if (type(raw) is RawDataElement and vr is not None and len(vr) == 2 and vr != "SQ" and vr != "UN"
            and raw.value is not None and raw.tag != _SPECIFIC_CHARACTER_SET):
        element = convert_raw_data_element(raw, encoding=dataset.original_character_set or dataset._character_set,
                                           ds=dataset)
        if element.VR not in AMBIGUOUS_VR:
            dataset._dict[raw.tag] = element
            return element
    return dataset[raw.tag]


def decoded_get(dataset: Dataset, tag: int) -> DataElement | None:
    """`dataset.get(tag)` for an int tag: the decoded element, or None when absent."""
    raw = dataset._dict.get(tag)
    return None if raw is None else decoded(dataset, raw)
