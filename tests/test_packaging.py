"""The wheel must carry every package: a sub-package missing from pyproject.toml works in an editable
install (the tests' set-up) and breaks in a real one, so check the list against the source tree."""

from __future__ import annotations

import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_deidcli_package_is_listed_in_pyproject() -> None:
    listed = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    found = {".".join(init.parent.relative_to(ROOT).parts) for init in (ROOT / "deidcli").rglob("__init__.py")}
    assert found - listed == set()
