"""PEP 562 lazy exports for package `__init__` modules.

`import deidcli` (and so `deid --version`, `deid --help`, `deid run --ocr never`) must not pay for
pydicom's pixel stack, OpenCV or an OCR engine it will not use: a package lists what it re-exports and
from which submodule, and each name is imported on first access only.
"""

from __future__ import annotations

import importlib
import importlib.util
from collections.abc import Callable, Mapping
from typing import Any


def lazy_exports(namespace: dict[str, Any], exports: Mapping[str, str]) -> tuple[Callable[[str], Any],
                                                                                 Callable[[], list[str]]]:
    """`(__getattr__, __dir__)` for the package whose `globals()` is `namespace`: its public name N lives
    in module `exports[N]`.

    The value is cached in the package's namespace after the first access, so later lookups are plain
    attribute reads.
    """
    package = namespace["__name__"]

    def __getattr__(name: str) -> Any:
        module = exports.get(name)
        if module is None:
            # `import deidcli; deidcli.api.run_batch(...)` worked while __init__ imported everything eagerly.
            if not name.startswith("_") and importlib.util.find_spec(f"{package}.{name}") is not None:
                return importlib.import_module(f"{package}.{name}")
            raise AttributeError(f"module {package!r} has no attribute {name!r}")
        value = getattr(importlib.import_module(module), name)
        namespace[name] = value
        return value

    def __dir__() -> list[str]:
        return sorted(set(namespace) | set(exports))

    return __getattr__, __dir__
