"""The Python API: `deidentify` for one in-memory dataset, `run` for a folder.

The CLI is a thin layer over these two functions.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from deidcli.batch import BatchRun, BatchSummary, default_private_dir
from deidcli.errors import FileRejected, UsageError
from deidcli.keys import generate_key_file, load_key
from deidcli.options import DEFAULT_RECIPE, RUN_OPTIONS, OptionError, Surface, resolve_options
from deidcli.pipeline import Pipeline, Settings
from deidcli.pseudonyms import validate_org_root
from deidcli.recipe.load import load_recipe
from deidcli.recipe.model import Recipe


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


def run(in_dir: str | Path, out_dir: str | Path, **options: Any):
    """De-identify every DICOM file under `in_dir` into `out_dir`; return the audit as a pandas DataFrame.

    Keyword arguments are the run options of `deidcli.options.RUN_OPTIONS` (the same as `deid run`'s).
    """
    return run_batch(in_dir, out_dir, **options).audit


def run_batch(in_dir: str | Path, out_dir: str | Path, *, surface: Surface = Surface.API,
              on_new_key: Callable[[Path], None] | None = None, **given: Any) -> BatchSummary:
    """`run`, returning the whole summary (exit code, counts); the CLI uses this with surface=CLI."""
    values = resolve_options(given, surface)
    ocr, region_rules = values["ocr"], values["region_rules"]
    if ocr == "never" and not region_rules and not values["accept_burned_in_risk"]:
        raise OptionError("{ocr} never needs {region_rules} FILE or an explicit {accept_burned_in_risk}")
    out_path = Path(out_dir)
    private_dir = values["private_dir"]
    private_path = Path(private_dir) if private_dir else default_private_dir(out_path)
    key = values["key"]
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
    authorised_words = values["authorised_words"]
    settings = Settings(
        recipe=resolve_recipe(values["recipe"], values["profile"], values["options"]),
        key=resolve_key(key),
        org_root=validate_org_root(values["org_root"]),
        ocr=ocr,
        ocr_engine=values["ocr_engine"],
        ocr_skip_modalities=values["ocr_skip_modalities"],
        accept_burned_in_risk=values["accept_burned_in_risk"],
        region_rules=rules,
        authorised_words_file=str(authorised_words) if authorised_words else None,
        file_timeout_s=values["file_timeout_s"],
    )
    batch = BatchRun(Path(in_dir), out_path, settings, private_dir=private_path, workers=values["workers"],
                     force=values["force"], progress=values["progress"])
    return batch.run()


def _signature_from_options() -> inspect.Signature:
    """`help(deidcli.run)` lists every run option with its default, from the one definition."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    positional = inspect.Parameter.POSITIONAL_OR_KEYWORD
    parameters = [inspect.Parameter("in_dir", positional), inspect.Parameter("out_dir", positional)]
    parameters += [inspect.Parameter(option.name, keyword, default=option.default) for option in RUN_OPTIONS]
    return inspect.Signature(parameters)


run.__signature__ = _signature_from_options()  # type: ignore[attr-defined]
