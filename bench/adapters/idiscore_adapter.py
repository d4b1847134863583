"""idiscore: create_default_core().deidentify(ds) (basic profile + clean descriptors + retain
patient characteristics/device id/safe private; rejects datasets that may hold burned-in text).

idiscore is a library only: outputs are written as OUT/<running index>.dcm (neutral names)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pydicom  # noqa: E402
from _common import list_inputs, run  # noqa: E402
from idiscore.defaults import create_default_core  # noqa: E402

try:
    from importlib.metadata import version

    VERSION = version("idiscore")
except Exception:  # pragma: no cover
    VERSION = "?"


def main() -> int:
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    core = create_default_core()

    def one(i, f):
        ds = pydicom.dcmread(f)
        ds = core.deidentify(ds)
        ds.save_as(os.path.join(out_dir, f"{i:06d}.dcm"))

    return run("idiscore", VERSION, list_inputs(in_dir), one)


if __name__ == "__main__":
    sys.exit(main())
