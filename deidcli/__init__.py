"""deidcli: zero-trust, keyed, audited de-identification of DICOM folders.

Public API (what `deid` offers, from Python)::

    import deidcli
    clean = deidcli.deidentify(dataset, recipe="basic", key=key_bytes, org_root="1.2.826.0.1.3680043.10.999")
    result = deidcli.run("in/", "out/", key="deid.key", workers=2)   # a RunResult
    result.exit_code, result.counts, result.audit                     # 0/3/4/130/143, by status, DataFrame
    report = deidcli.check_recipe("my-recipe.json")                   # report.errors, report.render()

Keyword arguments of `run` and `deidentify` are the run options of `deidcli.options.RUN_OPTIONS`, the same as
`deid run`'s. Every error is a `DeidError`.

The names are imported lazily (PEP 562): `import deidcli` and `deid --version` load no pydicom, numpy or
OCR engine; the first use of a name imports its module.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from deidcli._lazy import lazy_exports
from deidcli._version import __version__
from deidcli.forksafe import guard_opencv_pool

_EXPORTS = {
    "NewKeyWarning": "deidcli.api",
    "RunResult": "deidcli.api",
    "check_recipe": "deidcli.api",
    "deidentify": "deidcli.api",
    "run": "deidcli.api",
    "DeidError": "deidcli.errors",
    "FileRejected": "deidcli.errors",
    "KeyFileError": "deidcli.errors",
    "KeyMismatch": "deidcli.errors",
    "OcrError": "deidcli.errors",
    "OptionError": "deidcli.errors",
    "OutputConflict": "deidcli.errors",
    "PixelError": "deidcli.errors",
    "RecipeError": "deidcli.errors",
    "UsageError": "deidcli.errors",
    "generate_key_file": "deidcli.keys",
    "key_fingerprint": "deidcli.keys",
    "load_key": "deidcli.keys",
    "RUN_OPTIONS": "deidcli.options",
    "Action": "deidcli.recipe",
    "Recipe": "deidcli.recipe",
    "load_recipe": "deidcli.recipe",
    "build_profile": "deidcli.recipe.profiles",
}

__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
guard_opencv_pool()  # any fork of a process that used OpenCV (a batch's workers) gets a working pool

if TYPE_CHECKING:  # what type checkers and IDEs see; at run time the names above load on first use
    from deidcli.api import NewKeyWarning, RunResult, check_recipe, deidentify, run
    from deidcli.errors import (
        DeidError,
        FileRejected,
        KeyFileError,
        KeyMismatch,
        OcrError,
        OptionError,
        OutputConflict,
        PixelError,
        RecipeError,
        UsageError,
    )
    from deidcli.keys import generate_key_file, key_fingerprint, load_key
    from deidcli.options import RUN_OPTIONS
    from deidcli.recipe import Action, Recipe, load_recipe
    from deidcli.recipe.profiles import build_profile

__all__ = [
    "RUN_OPTIONS",
    "Action",
    "DeidError",
    "FileRejected",
    "KeyFileError",
    "KeyMismatch",
    "NewKeyWarning",
    "OcrError",
    "OptionError",
    "OutputConflict",
    "PixelError",
    "Recipe",
    "RecipeError",
    "RunResult",
    "UsageError",
    "__version__",
    "build_profile",
    "check_recipe",
    "deidentify",
    "generate_key_file",
    "key_fingerprint",
    "load_key",
    "load_recipe",
    "run",
]
