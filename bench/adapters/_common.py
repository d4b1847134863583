"""Shared helpers for adapters. Each adapter runs INSIDE its tool's venv as one whole process:

    <venv>/bin/python bench/adapters/<tool>_adapter.py IN_DIR OUT_DIR

It de-identifies every file of IN_DIR (flat) into OUT_DIR with the tool's default/basic profile,
catches per-file failures, and prints one JSON line on stdout:
    {"tool": ..., "version": ..., "ok": n, "failed": m, "errors": ["file: message", ...]}
Only the standard library is imported here (the venvs differ).
"""

from __future__ import annotations

import json
import os
import sys
import traceback


def list_inputs(in_dir: str) -> list[str]:
    return sorted(os.path.join(in_dir, f) for f in os.listdir(in_dir) if os.path.isfile(os.path.join(in_dir, f)))


def run(tool: str, version: str, files: list[str], one) -> int:
    ok = failed = 0
    errors: list[str] = []
    for i, f in enumerate(files):
        try:
            one(i, f)
            ok += 1
        except Exception as e:  # per-file failure: counted, run goes on
            failed += 1
            if len(errors) < 10:
                errors.append(f"{os.path.basename(f)}: {type(e).__name__}: {str(e)[:200]}")
            if os.environ.get("BENCH_ADAPTER_DEBUG"):
                traceback.print_exc()
    print(json.dumps({"tool": tool, "version": version, "ok": ok, "failed": failed, "errors": errors}))
    sys.stdout.flush()
    return 0
