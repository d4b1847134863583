"""The Python API: `deidentify` for one in-memory dataset, `run` for a folder, `check_recipe` for a recipe.

The CLI is a thin layer over these functions. Their keyword arguments are the run options of
`deidcli.options` (one definition for the command line and Python); errors name them as Python
parameters (`region_rules=`), never as command line flags.
"""

from __future__ import annotations

import copy
import inspect
import os
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset, FileMetaDataset
from pydicom.uid import ExplicitVRLittleEndian

from deidcli.audit import FileResult, PrivateRecord
from deidcli.batch import EXIT_DISK_FULL, BatchRun, BatchSummary, StorageFailure
from deidcli.errors import FileRejected, OptionError, storage_error
from deidcli.keys import KEY_ENV, choose_key, key_fingerprint
from deidcli.options import OPTIONS, RUN_OPTIONS, Surface, resolve_options
from deidcli.pipeline import Pipeline, Settings
from deidcli.prepare import build_settings, prepare_run, recipe_setting_problems
from deidcli.reasons import Status
from deidcli.recipe.check import CheckReport, check_recipe_text
from deidcli.recipe.load import recipe_source

#: The run options that apply to one dataset in memory (folders, workers, resume do not).
DATASET_OPTIONS = tuple(option.name for option in RUN_OPTIONS if option.for_dataset)


class NewKeyWarning(UserWarning):
    """A run made a new key: keep it, the same key is needed for pseudonyms that link across deliveries."""


def new_key_message(path: Path, fingerprint: str) -> str:
    """The announcement of a new key (the CLI prints it, the API warns with it)."""
    return (f"NEW KEY: created {path} (fingerprint {fingerprint}). Keep it secret and keep it: the same key is "
            "needed to get the same pseudonyms in later deliveries. If this is a later delivery of a study, "
            "stop and run again with the first delivery's key.")


# -- a recipe ------------------------------------------------------------------------------------------
def check_recipe(recipe: str | Path) -> CheckReport:
    """Check a recipe (a JSON file or a built-in name) as `deid check-recipe` does: every problem with its
    place and a fix, its settings as a run would check them, and (without errors) how it differs from the
    PS3.15 basic profile. Raises `RecipeError` when there is no such recipe or it cannot be read."""
    text, name = recipe_source(recipe)
    return check_recipe_text(text, name, setting_checks=recipe_setting_problems)


# -- one dataset ---------------------------------------------------------------------------------------
def deidentify(dataset: Dataset, recipe: Any = None, **options: Any) -> Dataset:
    """De-identify one dataset in memory, attributes and pixels, the way `run` does one file.

    Keyword arguments: `key` (bytes or a key file path; or the file named by $DEID_KEY_FILE) and the run
    options that concern one dataset: profile, options, org_root, ocr, ocr_engine, ocr_skip_modalities,
    accept_burned_in_risk, region_rules, builtin_regions, authorised_words. Burned-in text is found and masked
    (OCR and region rules) exactly as in a batch, so the result is only marked PatientIdentityRemoved with clean
    pixels.

    Returns a new dataset with its file meta; `dataset` is not modified. Raises `FileRejected` (its
    `reason` is an audit reason code) when it cannot be done safely, `UsageError` for a bad option.
    """
    unknown = [name for name in options if name not in DATASET_OPTIONS]
    if unknown:
        raise OptionError("deidentify() does not take {name}: it takes {known}", name=unknown[0],
                          known=", ".join(DATASET_OPTIONS))
    given = {"recipe": recipe, **options} if recipe is not None else dict(options)
    values = resolve_options(given, Surface.API)
    given_key = values["key"] if values["key"] is not None else os.environ.get(KEY_ENV)
    if not given_key:  # one dataset has no private folder to find or keep a key in
        raise OptionError("deidentify() needs {key}: the key's bytes or a key file (or set {env})", env=KEY_ENV)
    key = choose_key(given_key, private_dir=Path(os.devnull)).key  # a given key: no folder is looked at
    pipeline = _dataset_pipeline(build_settings(values, key))
    if "SOPClassUID" not in dataset:
        raise FileRejected("no_sop_class")
    source = _with_transfer_syntax(dataset)
    private = PrivateRecord("", "", "", "", "")
    target, syntax = pipeline.clean(source, FileResult(), private)
    from deidcli.write import build_file_meta

    target.file_meta = build_file_meta(target, syntax)
    _pixels_in_memory(target)
    return target


def _pixels_in_memory(target: Dataset) -> None:
    """The pixel stage may spool large pixel data to a temporary file (a batch streams it to disk);
    a dataset handed back to a caller holds plain bytes instead."""
    if "PixelData" not in target:
        return
    element = target["PixelData"]  # the element (Dataset.get would give its value)
    if hasattr(element.value, "read"):
        spool = element.value
        spool.seek(0)
        element.value = spool.read()
        spool.close()


_cached_pipeline: tuple[tuple, Pipeline] | None = None


def _dataset_pipeline(settings: Settings) -> Pipeline:
    """One pipeline per settings, reused by repeated `deidentify` calls (the OCR model loads once)."""
    global _cached_pipeline
    identity = (settings.recipe.hash, key_fingerprint(settings.key), settings.org_root, settings.ocr,
                settings.ocr_engine, settings.ocr_skip_modalities, settings.accept_burned_in_risk,
                repr(settings.region_rules), settings.authorised_words_file)
    if _cached_pipeline is None or _cached_pipeline[0] != identity:
        _cached_pipeline = (identity, Pipeline(settings, temp_dir=Path(".")))
    return _cached_pipeline[1]


def _with_transfer_syntax(dataset: Dataset) -> Dataset:
    """A dataset built in memory may have no file meta: its pixels are then native little endian."""
    meta = getattr(dataset, "file_meta", None)
    if meta is not None and "TransferSyntaxUID" in meta:
        return dataset
    source = copy.copy(dataset)  # shallow: the caller's dataset keeps its own (absent) file meta
    source.file_meta = FileMetaDataset(meta or FileMetaDataset())
    source.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    return source


# -- a folder ------------------------------------------------------------------------------------------
@dataclass
class RunResult:
    """What a run did: the audit, counts, the exit status the command would return, whether it stopped.

    For callers of earlier versions, which got the audit DataFrame itself, `result["status"]`, `len(result)`
    and DataFrame attributes (`result.iloc`, `result.drop(...)`) are the audit's.
    """

    summary: BatchSummary = field(repr=False)
    out_dir: Path
    private_dir: Path
    key_fingerprint: str
    #: The key file this run created (None when a key was given or found).
    new_key: Path | None = None

    @property
    def exit_code(self) -> int:
        """0 all written or skipped, 3 some quarantined, 4 disk full, 130 / 143 interrupted."""
        return self.summary.exit_code

    @property
    def interrupted(self) -> bool:
        """True when the run stopped early (signal, full disk): run it again to resume."""
        return self.summary.interrupted

    @property
    def seconds(self) -> float:
        return self.summary.seconds

    @property
    def message(self) -> str:
        """Why the run stopped early (OUT_DIR or the private folder could not be written); "" otherwise."""
        return self.summary.message

    @property
    def rows(self) -> list[dict[str, str]]:
        """The audit rows as dictionaries (no pandas needed)."""
        return self.summary.rows

    @cached_property
    def audit(self):
        """The audit (one row per input file) as a pandas DataFrame."""
        return self.summary.audit

    @property
    def counts(self) -> dict[str, int]:
        """Files by status: written, quarantined, skipped (every status present, zeros included)."""
        found = Counter(row["status"] for row in self.summary.rows)
        return {status.value: found.get(status.value, 0) for status in Status}

    @property
    def reasons(self) -> dict[str, int]:
        """Files not written, by reason code (`deid reasons` explains each)."""
        return dict(sorted(Counter(row["reason"] for row in self.summary.rows
                                   if row["status"] != Status.WRITTEN.value).items()))

    def __len__(self) -> int:
        return len(self.summary.rows)

    def __getitem__(self, column: Any) -> Any:
        return self.audit[column]

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_") or name in ("summary", "audit"):
            raise AttributeError(name)
        return getattr(self.audit, name)


def run(in_dir: str | Path, out_dir: str | Path, **options: Any) -> RunResult:
    """De-identify every DICOM file under `in_dir` into `out_dir`; return a `RunResult`.

    Keyword arguments are the run options of `deidcli.options.RUN_OPTIONS` (the same as `deid run`'s), plus
    `on_new_key(path, fingerprint)`, called when the run creates a key (default: a `NewKeyWarning`).
    Every setting is checked before anything is created; a bad one raises `UsageError` (or `RecipeError`).
    """
    return run_batch(in_dir, out_dir, **options)


def run_batch(in_dir: str | Path, out_dir: str | Path, *, surface: Surface = Surface.API,
              on_new_key: Callable[[Path, str], None] | None = None, **given: Any) -> RunResult:
    """`run`, for the CLI too (surface=CLI names options as flags in its errors)."""
    prepared = prepare_run(in_dir, out_dir, given, surface)
    executor = None
    if prepared.scheduler:
        from deidcli.distributed import DaskExecutor  # imports dask: only when asked for

        executor = DaskExecutor(prepared.scheduler)
        executor.check(prepared.settings, prepared.in_dir, prepared.out_dir)  # refused: nothing is created
    try:
        try:
            prepared.create_key(on_new_key or _warn_new_key)
        except OSError as error:  # a read-only or full private folder: the same exit 4 as during the batch
            if storage_error(error) is None:
                raise
            failure = StorageFailure("the private folder", storage_error(error))
            summary = BatchSummary([], EXIT_DISK_FULL, Counter(), 0.0, interrupted=True, message=failure.message)
            return RunResult(summary, prepared.out_dir, prepared.private_dir, prepared.key.fingerprint)
        batch = BatchRun(prepared.in_dir, prepared.out_dir, prepared.settings, private_dir=prepared.private_dir,
                         workers=prepared.workers, force=prepared.force, progress=prepared.progress,
                         executor=executor)
        summary = batch.run()
    finally:
        if executor is not None:
            executor.close()
    return RunResult(summary, prepared.out_dir, prepared.private_dir, prepared.key.fingerprint,
                     prepared.key.path if prepared.key.is_new else None)


def _warn_new_key(path: Path, fingerprint: str) -> None:
    warnings.warn(new_key_message(path, fingerprint), NewKeyWarning, stacklevel=5)


def _signature(leading: list[inspect.Parameter], names: Any) -> inspect.Signature:
    """A signature listing run options with their defaults, from their one definition (for help())."""
    keyword = inspect.Parameter.KEYWORD_ONLY
    return inspect.Signature(leading + [inspect.Parameter(name, keyword, default=OPTIONS[name].default)
                                        for name in names])


_POSITIONAL = inspect.Parameter.POSITIONAL_OR_KEYWORD
run.__signature__ = _signature(  # type: ignore[attr-defined]
    [inspect.Parameter("in_dir", _POSITIONAL), inspect.Parameter("out_dir", _POSITIONAL)],
    [option.name for option in RUN_OPTIONS])
deidentify.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
    [inspect.Parameter("dataset", _POSITIONAL), inspect.Parameter("recipe", _POSITIONAL, default=None)]
    + list(_signature([], [n for n in DATASET_OPTIONS if n != "recipe"]).parameters.values()))
