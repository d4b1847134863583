"""Floor: bare pydicom read + write of every file (no de-identification at all): the pure-Python
header-pass limit. Run with the project venv's python (same pydicom as deidcli)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pydicom  # noqa: E402
from _common import list_inputs, run  # noqa: E402


def main() -> int:
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)

    def one(i, f):
        ds = pydicom.dcmread(f)
        ds.save_as(os.path.join(out_dir, f"{i:06d}.dcm"))

    return run("pydicom read+write", pydicom.__version__, list_inputs(in_dir), one)


if __name__ == "__main__":
    sys.exit(main())
