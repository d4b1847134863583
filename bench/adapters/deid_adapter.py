"""pydicom/deid (PyPI `deid`): default recipe (deid.dicom), replace_identifiers(..., save=True).

Output names are deid's own (save_dicom keeps the input basename)."""

import logging
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from _common import list_inputs, run  # noqa: E402
from deid.config import DeidRecipe  # noqa: E402
from deid.dicom import replace_identifiers  # noqa: E402
from deid.logger import bot  # noqa: E402
from deid.version import __version__  # noqa: E402

bot.level = 0  # quiet (warnings go to stderr otherwise)
logging.disable(logging.WARNING)


def main() -> int:
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    os.makedirs(out_dir, exist_ok=True)
    recipe = DeidRecipe()  # the library default recipe, loaded once

    def one(_i, f):
        replace_identifiers([f], deid=recipe, save=True, output_folder=out_dir, overwrite=True)

    return run("deid", __version__, list_inputs(in_dir), one)


if __name__ == "__main__":
    sys.exit(main())
