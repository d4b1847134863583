"""Empty pydicom Datasets built without `Dataset.__init__`.

Why: the header pass makes a dozen Datasets per sequence-heavy file (every sequence item read by
`deidcli.fastread`, every item the attribute pass writes), and `Dataset.__init__` sets its thirteen
attributes through `Dataset.__setattr__`, which tests each name against the DICOM keyword rules: a twentieth
of the header pass. `new_dataset` copies a blank Dataset's attributes instead (fresh dicts), which gives the
same object as long as pydicom's Dataset has exactly the attributes this was written for; otherwise it uses
`Dataset(...)` and `set_original_encoding`, pydicom's own way.
"""

from __future__ import annotations

from pydicom.charset import default_encoding
from pydicom.dataset import Dataset, FileMetaDataset

#: A new Dataset's attributes (None: this pydicom's Dataset is not the one the shortcut was written for).
_BLANK_STATE: dict | None = dict(Dataset().__dict__)
if set(_BLANK_STATE) != {
        "_parent_encoding", "_dict", "is_decompressed", "_read_little", "_read_implicit", "_read_charset",
        "_is_little_endian", "_is_implicit_VR", "is_undefined_length_sequence_item", "_private_blocks",
        "_pixel_array", "_pixel_array_opts", "_pixel_id"}:
    _BLANK_STATE = None
#: Whether an empty FileMetaDataset has exactly a blank Dataset's attributes (its __init__ adds none).
_FILE_META_SHORTCUT = _BLANK_STATE is not None and FileMetaDataset().__dict__.keys() == _BLANK_STATE.keys()


def new_dataset(elements: dict, parent_encoding, implicit: bool | None, little: bool | None,
                charset) -> Dataset:
    """`Dataset(elements, parent_encoding=parent_encoding)` then `set_original_encoding(implicit, little,
    charset)` (a None `charset` leaves the blank one, as pydicom does); `elements` becomes the dataset's own
    element dict (not copied)."""
    if _BLANK_STATE is None:
        dataset = Dataset(elements, parent_encoding=parent_encoding)
        dataset.set_original_encoding(implicit, little, charset)
        return dataset
    return _fill(Dataset.__new__(Dataset), elements, parent_encoding, implicit, little, charset)


def empty_dataset() -> Dataset:
    """`Dataset()`."""
    return new_dataset({}, default_encoding, None, None, None)


def new_file_meta() -> FileMetaDataset:
    """`FileMetaDataset()`: empty, so there is nothing for its group 0002 check to look at. The writer and the
    pixel stage make one or two per file."""
    if not _FILE_META_SHORTCUT:
        return FileMetaDataset()
    return _fill(FileMetaDataset.__new__(FileMetaDataset), {}, default_encoding, None, None, None)


def _fill(dataset, elements: dict, parent_encoding, implicit, little, charset):
    """Give a new, uninitialised dataset a blank Dataset's attributes (fresh dicts) and these values."""
    state = dataset.__dict__
    for name, value in _BLANK_STATE.items():
        state[name] = value.copy() if type(value) is dict else value
    state["_dict"] = elements
    state["_parent_encoding"] = parent_encoding
    state["_read_implicit"] = implicit
    state["_read_little"] = little
    if charset is not None:
        state["_read_charset"] = charset
    return dataset
