"""From run options to checked `Settings`: every check before the first file, and nothing created before.

Why a separate step: a setting checked lazily, inside the worker, turns a typo (an unknown word list, an
engine that is not installed) into every file quarantined as `internal_error`; and a key or a folder created
before a later check fails is left behind (a key inside IN_DIR, a stray OUT_DIR.private). So `prepare_run`
only reads and checks: folders, recipe, word lists, region rules, OCR engine, UID root, the key against
what OUT_DIR and the private folder were made with. `PreparedRun.create_key` writes a new key only after
all of that passed.

Precedence of a setting that a recipe may also carry (org_root): given (command line or Python) > recipe >
default. `date_shift_days` and the recipe's `authorised_words` lists are recipe settings only; a word file
given to the run is added to the recipe's lists.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib.util
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from deidcli.batch import check_folders, check_out_dir, default_private_dir, read_manifest
from deidcli.errors import KeyMismatch, OptionError, RecipeError, UsageError
from deidcli.keys import (
    PRIVATE_KEY_NAME,
    KeyChoice,
    choose_key,
    read_key_record,
    write_key_file,
    write_key_record,
)
from deidcli.options import DEFAULT_RECIPE, RUN_OPTIONS, Surface, resolve_options
from deidcli.pipeline import Settings
from deidcli.pseudonyms import validate_org_root
from deidcli.recipe.check import review_for_run
from deidcli.recipe.load import Problem, load_recipe
from deidcli.recipe.model import Recipe

#: The Python modules each OCR engine imports (checked before the first file when OCR may run), and how to
#: install them.
ENGINE_MODULES = {
    "rapidocr": (("rapidocr_onnxruntime",), "pip install rapidocr_onnxruntime"),
    "easyocr": (("easyocr", "easyocr_en_models", "torch"), "pip install 'deidcli[easyocr]'"),
}


@dataclass
class PreparedRun:
    """A run whose settings all passed their checks; nothing has been created yet."""

    in_dir: Path
    out_dir: Path
    private_dir: Path
    settings: Settings
    key: KeyChoice
    workers: int
    force: bool
    progress: bool
    #: A Dask scheduler address: the per-file work runs on that cluster (deidcli.distributed).
    scheduler: str | None = None

    def create_key(self, on_new_key: Callable[[Path, str], None] | None = None) -> None:
        """Write the new key (if the run makes one) and record which key the private folder uses."""
        self.private_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.key.is_new:
            assert self.key.path is not None
            write_key_file(self.key.path, self.key.key)
            if on_new_key is not None:
                on_new_key(self.key.path, self.key.fingerprint)
        write_key_record(self.private_dir, self.key)


def resolve_recipe(recipe: Recipe | str | Path | None = None, profile: str | None = None,
                   options: Sequence[str] = ()) -> Recipe:
    """A Recipe object, a built-in name, a file path, or a standard profile with options."""
    if profile is not None or options:
        if recipe is not None:
            raise OptionError("give either {recipe} or {profile} with {options}, not both")
        from deidcli.recipe.profiles import build_profile

        return build_profile(profile or "basic", list(options))
    if isinstance(recipe, Recipe):
        return recipe
    return load_recipe(recipe or DEFAULT_RECIPE)


def prepare_run(in_dir: str | Path, out_dir: str | Path, given: Mapping[str, Any],
                surface: Surface = Surface.API) -> PreparedRun:
    """Check every setting of a run, in the order a user fixes them; raise a UsageError (or RecipeError)."""
    values = resolve_options(given, surface)
    in_path, out_path = Path(in_dir), Path(out_dir)
    private_dir = Path(values["private_dir"]) if values["private_dir"] else default_private_dir(out_path)
    _check_paths(in_path, out_path, private_dir)
    settings = build_settings(values, key=b"")  # every check but the key's: a key is only read after them
    review_for_run(settings.recipe, values["accept_recipe_risk"])  # its warnings once; refusal: nothing made
    key = choose_key(values["key"], private_dir)
    check_key_matches(key, out_path, private_dir)
    settings = dataclasses.replace(settings, key=key.key)
    check_out_dir(out_path, settings, values["force"])
    return PreparedRun(in_path, out_path, private_dir, settings, key, values["workers"], values["force"],
                       values["progress"], values["scheduler"])


def build_settings(values: Mapping[str, Any], key: bytes) -> Settings:
    """Settings from resolved option values (see `resolve_options`), each file or name they point to checked:
    recipe, UID root (given > recipe > 2.25), OCR mode against region rules, word lists, OCR engine."""
    recipe = resolve_recipe(values["recipe"], values["profile"], values["options"])
    values = with_recipe_settings(values, recipe)
    org_root = validate_org_root(values["org_root"])
    if values["ocr"] == "never" and not values["region_rules"] and not values["accept_burned_in_risk"]:
        raise OptionError("{ocr} never needs {region_rules} FILE or an explicit {accept_burned_in_risk}")
    region_rules = _region_rules(values["region_rules"], values["builtin_regions"])
    _check_authorised_words(recipe, values["authorised_words"])
    if values["ocr"] != "never":
        _check_engine_installed(values["ocr_engine"])
    patient_map = None
    if values["patient_map"] is not None:
        from deidcli.patients import load_patient_map

        patient_map = load_patient_map(values["patient_map"])
    return Settings(
        recipe=recipe,
        key=key,
        org_root=org_root,
        ocr=values["ocr"],
        ocr_engine=values["ocr_engine"],
        ocr_skip_modalities=values["ocr_skip_modalities"],
        accept_burned_in_risk=values["accept_burned_in_risk"],
        region_rules=region_rules,
        authorised_words_file=str(values["authorised_words"]) if values["authorised_words"] else None,
        file_timeout_s=values["file_timeout_s"],
        patient_map=patient_map,
    )


def _check_paths(in_dir: Path, out_dir: Path, private_dir: Path) -> None:
    if not in_dir.is_dir():
        raise UsageError(f"IN_DIR {in_dir} is not a folder")
    if out_dir.exists() and not out_dir.is_dir():
        raise UsageError(f"OUT_DIR {out_dir} is a file, not a folder")
    if private_dir.exists() and not private_dir.is_dir():
        raise OptionError("{private_dir} {path} is a file, not a folder", path=private_dir)
    check_folders(in_dir, out_dir, private_dir)


def with_recipe_settings(values: Mapping[str, Any], recipe: Recipe) -> dict[str, Any]:
    """Options the recipe may set (`in_recipe`) take the recipe's value where the run gave none:
    given > recipe > default. (Both were checked: the option by its definition, the recipe when loaded.)"""
    merged = dict(values)
    for option in RUN_OPTIONS:
        from_recipe = getattr(recipe, option.name, None) if option.in_recipe else None
        if from_recipe is not None and merged[option.name] is None:
            merged[option.name] = from_recipe
    return merged


def _region_rules(path: Path | str | None, builtin: bool) -> list:
    """The built-in device rules (unless turned off) followed by the user's rules file."""
    from deidcli.pixels.regions import builtin_region_rules, combine_region_rules, load_region_rules

    try:
        given = load_region_rules(path) if path else []
        return combine_region_rules(builtin_region_rules() if builtin else [], given)
    except UsageError as error:
        raise OptionError("{region_rules}: {problem}", problem=str(error)) from None


def recipe_setting_problems(recipe: Recipe) -> list[Problem]:
    """Problems of a recipe's settings that only the run can judge (the recipe package knows no word lists);
    `deid check-recipe` reports them too, so it never passes a recipe that `deid run` refuses."""
    from deidcli.ocr.authorised import BUILTIN_LISTS

    problems = []
    for name in recipe.authorised_words:
        if name not in BUILTIN_LISTS:
            close = difflib.get_close_matches(name, BUILTIN_LISTS, n=1)
            hint = f"did you mean {close[0]!r}?" if close else f"known: {', '.join(BUILTIN_LISTS)}"
            problems.append(Problem("error", "authorised_words", f"unknown word list {name!r}; {hint}",
                                    f"known word lists: {', '.join(BUILTIN_LISTS)}"))
    return problems


def _check_authorised_words(recipe: Recipe, path: Path | str | None) -> None:
    """The recipe's word list names exist and the word file reads: a typo must not reach the workers."""
    from deidcli.ocr.authorised import combined_authorised_words

    problems = recipe_setting_problems(recipe)
    if problems:
        listing = "\n".join(f"  {problem}" for problem in problems)
        raise RecipeError(f"recipe {recipe.name} has {len(problems)} error(s):\n{listing}", problems)
    try:
        combined_authorised_words(recipe.authorised_words, path)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        raise OptionError("{authorised_words} {path}: cannot be read as text ({problem})", path=path,
                          problem=getattr(error, "strerror", None) or type(error).__name__) from None


def _check_engine_installed(engine: str) -> None:
    modules, install = ENGINE_MODULES[engine]
    missing = [module for module in modules if importlib.util.find_spec(module) is None]
    if missing:
        raise OptionError("{ocr_engine} {engine} needs the Python package(s) {missing}, not installed here "
                          "({install}); or choose another {ocr_engine}, or {ocr} never with {region_rules}",
                          engine=engine, missing=", ".join(missing), install=install)


def check_key_matches(key: KeyChoice, out_dir: Path, private_dir: Path) -> None:
    """Refuse a key that is not the one OUT_DIR (or the private folder's mapping) was made with, saying which
    key is expected and where it was. A new key is never made for an OUT_DIR that already holds a run."""
    manifest = read_manifest(out_dir)
    record = read_key_record(private_dir)
    expected = (manifest or {}).get("key_fingerprint") or (record.fingerprint if record else None)
    if expected is None or expected == key.fingerprint:
        return
    holder = f"{out_dir}" if manifest is not None else f"the private folder {private_dir}"
    if record is not None and record.fingerprint == expected:
        where = f"{record.describe()}, as recorded in {private_dir}"
    elif (private_dir / PRIVATE_KEY_NAME).exists():
        where = f"the key of the private folder {private_dir / PRIVATE_KEY_NAME}"
    else:
        where = "where that key was is not recorded"
    if key.is_new:
        raise KeyMismatch(
            "{holder} was made with the key of fingerprint {expected} ({where}), and no key was given. Give "
            "that key with {key}: a new key would give every file other pseudonyms and break the link with "
            "what was delivered before.", holder=holder, expected=expected, where=where)
    raise KeyMismatch(
        "{holder} was made with the key of fingerprint {expected} ({where}), but this run has {given}. Give "
        "that key with {key}, or write this delivery to a new OUT_DIR (its pseudonyms will then not link "
        "with the earlier ones).", holder=holder, expected=expected, where=where, given=key.describe())
