"""deidcli: zero-trust, keyed, audited de-identification of DICOM folders.

Public API::

    import deidcli
    clean = deidcli.deidentify(dataset, recipe="basic", key=key_bytes, org_root="1.2.826.0.1.3680043.10.999")
    audit = deidcli.run("in/", "out/", key="deid.key", workers=2)
"""

from deidcli._version import __version__
from deidcli.api import deidentify, run
from deidcli.errors import (
    DeidError,
    FileRejected,
    KeyFileError,
    OcrError,
    OutputConflict,
    PixelError,
    RecipeError,
    UsageError,
)
from deidcli.recipe import Action, Recipe, load_recipe

__all__ = [
    "Action",
    "DeidError",
    "FileRejected",
    "KeyFileError",
    "OcrError",
    "OutputConflict",
    "PixelError",
    "Recipe",
    "RecipeError",
    "UsageError",
    "__version__",
    "deidentify",
    "load_recipe",
    "run",
]
