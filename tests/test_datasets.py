"""`deidcli.datasets.new_dataset` gives the Dataset pydicom's constructor gives."""

import pytest
from pydicom.dataelem import DataElement
from pydicom.dataset import Dataset

from deidcli import datasets
from deidcli.datasets import new_dataset


def _pydicom_way(elements, parent_encoding, implicit, little, charset) -> Dataset:
    dataset = Dataset(elements, parent_encoding=parent_encoding)
    dataset.set_original_encoding(implicit, little, charset)
    return dataset


def test_new_dataset_has_the_attributes_pydicom_constructor_gives():
    for implicit, little, charset in ((False, True, "iso8859"), (True, True, ["iso8859", "iso2022_jp"]),
                                      (None, None, None)):
        elements = {0x00100010: DataElement(0x00100010, "PN", "Doe^J")}
        built = new_dataset(elements, ["latin_1"], implicit, little, charset)
        expected = _pydicom_way(dict(elements), ["latin_1"], implicit, little, charset)
        assert built.__dict__ == expected.__dict__
        assert built._dict is elements  # the given dict, not a copy
        assert built.original_encoding == (implicit, little)


def test_new_datasets_share_no_mutable_state():
    first, second = new_dataset({}, "iso8859", False, True, ""), new_dataset({}, "iso8859", False, True, "")
    first._private_blocks[(9, "X")] = None
    first._pixel_id["id"] = 1
    first._pixel_array_opts["use_pdh"] = True
    assert second._private_blocks == {} and second._pixel_id == {} and second._pixel_array_opts == {"use_pdh": False}


def test_new_dataset_falls_back_to_pydicom_when_dataset_attributes_change(monkeypatch):
    monkeypatch.setattr(datasets, "_BLANK_STATE", None)
    built = new_dataset({}, "iso8859", True, True, "iso_ir_100")
    assert built.__dict__ == _pydicom_way({}, "iso8859", True, True, "iso_ir_100").__dict__


def test_empty_dataset_and_file_meta_equal_pydicoms():
    from pydicom.dataset import FileMetaDataset

    from deidcli.datasets import empty_dataset, new_file_meta

    assert type(empty_dataset()) is Dataset and empty_dataset().__dict__ == Dataset().__dict__
    meta = new_file_meta()
    assert type(meta) is FileMetaDataset and meta.__dict__ == FileMetaDataset().__dict__
    meta.TransferSyntaxUID = "1.2.840.10008.1.2.1"  # still a FileMetaDataset: group 0002 only
    with pytest.raises(ValueError):
        meta.PatientName = "Doe"
