"""Kitware dicom-anonymizer: anonymize(IN, OUT, {}, delete_private_tags=True), i.e. the CLI defaults
(`dicom-anonymizer IN OUT`). The library walks the folder itself and keeps input basenames.
Per-file failures abort its loop, so we drive it file by file (same function, same defaults)."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import list_inputs, run  # noqa: E402
from dicomanonymizer.simpledicomanonymizer import anonymize_dicom_file  # noqa: E402

try:
    from importlib.metadata import version

    VERSION = version("dicom-anonymizer")
except Exception:  # pragma: no cover
    VERSION = "?"


def main() -> int:
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)

    def one(_i, f):
        anonymize_dicom_file(f, os.path.join(out_dir, os.path.basename(f)), {}, True)

    return run("dicom-anonymizer", VERSION, list_inputs(in_dir), one)


if __name__ == "__main__":
    sys.exit(main())
