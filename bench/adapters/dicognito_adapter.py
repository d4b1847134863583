"""dicognito via its own CLI entry point (same code path as `dicognito -q -o OUT IN`):
Anonymizer() defaults, output files named by the new SOPInstanceUID."""

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import json  # noqa: E402

from dicognito.__main__ import main as dmain  # noqa: E402

try:
    from importlib.metadata import version

    VERSION = version("dicognito")
except Exception:  # pragma: no cover
    VERSION = "?"

if __name__ == "__main__":
    in_dir, out_dir = sys.argv[1], sys.argv[2]
    n = len(os.listdir(in_dir))
    dmain(["--quiet", "--output-directory", out_dir, in_dir])
    got = len(os.listdir(out_dir)) if os.path.isdir(out_dir) else 0
    print(json.dumps({"tool": "dicognito", "version": VERSION, "ok": got, "failed": n - got, "errors": []}))
