"""The Python API: `deidentify` for one in-memory dataset, `run` for a folder.

The CLI is a thin layer over these two functions.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from pydicom.dataset import Dataset

from deidcli.batch import BatchRun, BatchSummary, default_private_dir
from deidcli.errors import FileRejected, UsageError
from deidcli.keys import generate_key_file, load_key
from deidcli.pipeline import OCR_MODES, Pipeline, Settings
from deidcli.pseudonyms import validate_org_root
from deidcli.recipe.load import load_recipe
from deidcli.recipe.model import Recipe

DEFAULT_RECIPE = "default"


def resolve_recipe(recipe: Recipe | str | Path | None = None, profile: str | None = None,
                   options: Sequence[str] = ()) -> Recipe:
    """A Recipe object, a built-in name, a file path, or a standard profile with options."""
    if profile is not None or options:
        if recipe is not None:
            raise UsageError("give either a recipe or a profile with options, not both")
        from deidcli.recipe.profiles import build_profile

        return build_profile(profile or "basic", list(options))
    if isinstance(recipe, Recipe):
        return recipe
    return load_recipe(recipe or DEFAULT_RECIPE)


def resolve_key(key: bytes | str | Path | None) -> bytes:
    if isinstance(key, bytes):
        return key
    if key is None:
        env = os.environ.get("DEID_KEY_FILE")
        if not env:
            raise UsageError("a key is needed: pass key=bytes or a key file path, or set DEID_KEY_FILE")
        key = env
    return load_key(key)


def deidentify(dataset: Dataset, recipe: Recipe | str | Path | None = None, *, key: bytes | str | Path,
               org_root: str | None = None) -> Dataset:
    """De-identify one dataset in memory (attributes only; pixels are the batch's job).

    Returns a new dataset; `dataset` is not modified. Raises `FileRejected` when it cannot be done safely.
    """
    settings = Settings(recipe=resolve_recipe(recipe), key=resolve_key(key), org_root=validate_org_root(org_root),
                        ocr="never", accept_burned_in_risk=True)
    pipeline = Pipeline(settings, temp_dir=Path("."))
    if "SOPClassUID" not in dataset:
        raise FileRejected("no_sop_class")
    target, _ = pipeline.deidentify(dataset)
    if "PixelData" in target:
        from deidcli.write import build_file_meta, output_transfer_syntax

        syntax = getattr(getattr(dataset, "file_meta", None), "TransferSyntaxUID", None)
        target.file_meta = build_file_meta(target, output_transfer_syntax(str(syntax) if syntax else None))
    return target


def run(in_dir: str | Path, out_dir: str | Path, *, recipe: Recipe | str | Path | None = None,
        profile: str | None = None, options: Sequence[str] = (), key: bytes | str | Path | None = None,
        org_root: str | None = None, private_dir: str | Path | None = None, workers: int = 1,
        ocr: str = "auto", ocr_engine: str = "rapidocr", ocr_skip_modalities: Sequence[str] = (),
        accept_burned_in_risk: bool = False, region_rules: str | Path | None = None,
        authorised_words: str | Path | None = None, file_timeout_s: float = 600.0, force: bool = False,
        progress: bool = False, scheduler: str | None = None):
    """De-identify every DICOM file under `in_dir` into `out_dir`; return the audit as a pandas DataFrame.

    `scheduler` ("tcp://HOST:8786") runs the per-file work on that Dask cluster instead of `workers`
    local processes; IN and OUT must be reachable at the same paths on every worker."""
    return run_batch(**locals()).audit


def run_batch(in_dir: str | Path, out_dir: str | Path, *, recipe=None, profile=None, options=(), key=None,
              org_root=None, private_dir=None, workers=1, ocr="auto", ocr_engine="rapidocr",
              ocr_skip_modalities=(), accept_burned_in_risk=False, region_rules=None, authorised_words=None,
              file_timeout_s=600.0, force=False, progress=False, on_new_key=None, scheduler=None) -> BatchSummary:
    """`run`, returning the whole summary (exit code, counts); the CLI uses this."""
    if ocr not in OCR_MODES:
        raise UsageError(f"ocr must be one of {', '.join(OCR_MODES)}")
    if ocr == "never" and not region_rules and not accept_burned_in_risk:
        raise UsageError("--ocr never needs --region-rules FILE or an explicit --accept-burned-in-risk")
    out_path = Path(out_dir)
    private_path = Path(private_dir) if private_dir else default_private_dir(out_path)
    if key is None and not os.environ.get("DEID_KEY_FILE"):
        key_path = private_path / "deid.key"
        if not key_path.exists():
            private_path.mkdir(parents=True, exist_ok=True, mode=0o700)
            generate_key_file(key_path)
            if on_new_key:
                on_new_key(key_path)
        key = key_path
    rules = []
    if region_rules:
        from deidcli.pixels import load_region_rules

        rules = load_region_rules(region_rules)
    settings = Settings(
        recipe=resolve_recipe(recipe, profile, options),
        key=resolve_key(key),
        org_root=validate_org_root(org_root),
        ocr=ocr,
        ocr_engine=ocr_engine,
        ocr_skip_modalities=tuple(ocr_skip_modalities),
        accept_burned_in_risk=accept_burned_in_risk,
        region_rules=rules,
        authorised_words_file=str(authorised_words) if authorised_words else None,
        file_timeout_s=file_timeout_s,
    )
    executor = None
    if scheduler:
        from deidcli.distributed import DaskExecutor  # imports dask: only when asked for

        executor = DaskExecutor(scheduler)
    batch = BatchRun(Path(in_dir), out_path, settings, private_dir=private_path, workers=workers, force=force,
                     progress=progress, executor=executor)
    return batch.run()
