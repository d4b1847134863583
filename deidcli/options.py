"""Every option of a run, defined once: name, default, choices, help and the check of its value.

Why one table: the `deid run` command builds its click options from it, `deidcli.run(...)` takes its keyword
arguments from it and `deidcli.pipeline.Settings` takes its defaults from it, so a default or a choice can
never differ between the command line and the library. To add an option, add one `RunOption` to `RUN_OPTIONS`
(and, if workers need it, a field in `Settings` whose default is `default_of(name)`).

Messages name options through `OptionError`, whose text is a template such as
``"{ocr} never needs {region_rules} or {accept_burned_in_risk}"``: the command line renders the
placeholders as `--ocr`, `--region-rules`, ...; the Python API as `ocr`, `region_rules`, ... So a library
user is never told about a flag they cannot type, and a command line user never about a keyword argument.

This module is cheap to import (no pydicom, no OCR): `deid --help` must stay fast.
"""

from __future__ import annotations

import difflib
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from pathlib import Path
from typing import Any

from deidcli.errors import OptionError, UsageError

__all__ = ["OPTIONS", "RUN_OPTIONS", "Kind", "OptionError", "RunOption", "Surface", "default_of",
           "render_error", "render_template", "resolve_options"]

#: OCR modes: `auto` reads every image except skipped modalities, `always` every image, `never` none.
OCR_MODES = ("auto", "always", "never")
#: OCR engines `deidcli.ocr.engines.ENGINES` implements (a test keeps the two in step; the engines
#: module loads OpenCV, too heavy for `deid --help`).
OCR_ENGINES = ("rapidocr", "easyocr")
#: The recipe used when none is named.
DEFAULT_RECIPE = "default"
#: PS3.15 base profiles (`deidcli.recipe.profiles.PROFILES`; a test keeps the two in step).
PROFILES = ("basic",)


class Surface(StrEnum):
    """Where an option is given: it decides how messages spell option names."""

    CLI = "cli"
    API = "api"


class Kind(StrEnum):
    """The type of an option's value (the command line builds its click type from it)."""

    TEXT = "text"
    INT = "int"
    FLOAT = "float"
    FLAG = "flag"
    FILE = "file"  # an existing file
    FOLDER = "folder"  # a folder, created if needed
    KEY = "key"  # a key file path (or, through the API, the key bytes)


@dataclass(frozen=True)
class RunOption:
    """One option of a run. `name` is the Python keyword argument; `flag` is the command line spelling."""

    name: str
    kind: Kind
    help: str
    default: Any = None
    choices: tuple[str, ...] = ()
    multiple: bool = False
    #: The command line flag when it is not `--` + name with dashes (e.g. --file-timeout for file_timeout_s).
    cli_flag: str = ""
    #: The command line default when it differs (workers: the machine's cores; a library call takes one).
    cli_default: Any = None
    metavar: str | None = None
    envvar: str | None = None
    #: For FLAG options whose command line flag says the opposite (--no-progress sets progress False).
    cli_inverted: bool = False
    #: A recipe file may set this option at its top level, read into the `Recipe` attribute of the same name
    #: (precedence: given > recipe > default, so such an option's default is None).
    in_recipe: bool = False
    #: `deidcli.deidentify(dataset, ...)` takes it too (it concerns one dataset, not folders or workers).
    for_dataset: bool = False
    #: Extra check of a given value (raises OptionError); runs before the first file.
    check: Callable[[Any], None] | None = field(default=None, compare=False)

    @property
    def flag(self) -> str:
        return self.cli_flag or "--" + self.name.replace("_", "-")

    def spelled(self, surface: Surface) -> str:
        """How a message names this option on `surface`."""
        return self.flag if surface is Surface.CLI else self.name

    def help_for(self, surface: Surface) -> str:
        """The help text, other options named as `surface` spells them."""
        return render_template(self.help, surface)

    def default_for(self, surface: Surface) -> Any:
        if surface is Surface.CLI and self.cli_default is not None:
            return self.cli_default
        return self.default


def render_template(template: str, surface: Surface | str, **values: Any) -> str:
    """Fill {option_name} placeholders with the option's spelling on `surface` (and other values)."""
    names = {name: option.spelled(Surface(surface)) for name, option in OPTIONS.items()}
    return template.format_map({**names, **values})


def render_error(error: Exception, surface: Surface) -> str:
    """The message of any deidcli error, option names spelled for `surface`."""
    return error.render(surface) if isinstance(error, OptionError) else str(error)



# -- value checks (pure, cheap; the costly ones, like loading a recipe, live in deidcli.prepare) ----------
def _check_org_root(value: Any) -> None:
    from deidcli.pseudonyms import validate_org_root

    try:
        validate_org_root(value)
    except UsageError as error:
        raise OptionError("{org_root} {problem}", problem=str(error)) from None


def _check_workers(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise OptionError("{workers} must be a whole number of at least 1, not {value!r}", value=value)


def _check_scheduler(value: Any) -> None:
    if not isinstance(value, str) or "://" not in value:
        raise OptionError("{scheduler} must be a Dask scheduler address such as tcp://HOST:8786, not {value!r}",
                          value=value)


def _check_file_timeout(value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise OptionError("{file_timeout_s} must be a number of seconds (0 for no limit), not {value!r}",
                          value=value)


def _check_profile_options(value: Any) -> None:
    from deidcli.recipe.profiles import OPTIONS as PROFILE_OPTIONS

    unknown = [name for name in value if name not in PROFILE_OPTIONS]
    if unknown:
        raise OptionError("{options}: unknown PS3.15 option(s) {unknown}; known: {known}",
                          unknown=", ".join(map(repr, unknown)), known=", ".join(PROFILE_OPTIONS))


#: Every option of `deid run` / `deidcli.run`, in the order `deid run --help` lists them.
RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        "recipe", Kind.TEXT, for_dataset=True, metavar="NAME|FILE",
        help="The recipe that says what happens to each attribute: a built-in name (see 'deid recipe list') "
             "or a JSON file. Attributes the recipe does not name are removed. When neither a recipe nor a "
             "profile is given, the built-in recipe 'default' is used.",
    ),
    RunOption(
        "profile", Kind.TEXT, for_dataset=True, choices=PROFILES,
        help="Build the recipe from this PS3.15 profile instead of naming one (the standard has one: basic). "
             "Cannot be combined with {recipe}.",
    ),
    RunOption(
        "options", Kind.TEXT, for_dataset=True, multiple=True, default=(), cli_flag="--option", metavar="OPTION",
        check=_check_profile_options,
        help="Add this PS3.15 option to {profile}, for example retain-modified-dates (repeatable; "
             "'deid recipe list' shows them all). Implies the basic profile when no profile is given.",
    ),
    RunOption(
        "key", Kind.KEY, for_dataset=True, cli_flag="--key-file", envvar="DEID_KEY_FILE", metavar="FILE",
        help="The secret key file every pseudonym is derived from (make one with 'deid keygen'; the Python "
             "API also takes the key's bytes). Use the same key for every delivery of a study, or pseudonyms "
             "will not link. When {key} is not given, the file named by the DEID_KEY_FILE environment "
             "variable is used, then the key in the private folder of OUT_DIR; when there is none and OUT_DIR "
             "is new, a key is created in the private folder and announced with its fingerprint.",
    ),
    RunOption(
        "org_root", Kind.TEXT, for_dataset=True, in_recipe=True, check=_check_org_root, metavar="UID_ROOT",
        help="Your organisation's UID root, under which new UIDs are made. A recipe may set it too (as "
             "\"org_root\"); {org_root} wins over the recipe. When neither gives one, UIDs are 2.25 "
             "UUID-derived UIDs.",
    ),
    RunOption(
        "private_dir", Kind.FOLDER, metavar="FOLDER",
        help="Where the private mapping (original <-> pseudonym) and a generated key go. It holds personal "
             "data: keep it apart from OUT_DIR. The default is OUT_DIR.private, created with mode 0700.",
    ),
    RunOption(
        "workers", Kind.INT, default=1, cli_default=os.cpu_count() or 1, check=_check_workers,
        help="How many files are processed in parallel, one process each. The command uses every core by "
             "default; the Python API uses one unless told otherwise.",
    ),
    RunOption(
        "scheduler", Kind.TEXT, metavar="tcp://HOST:8786", envvar="DEID_SCHEDULER", check=_check_scheduler,
        help="Run the per-file work on the Dask cluster of this scheduler (extra deidcli[dask]) instead of "
             "{workers} local processes. IN_DIR and OUT_DIR must be at the same paths on every worker; the "
             "audit and the private mapping are written here. 'deid cluster-check' checks the workers first.",
    ),
    RunOption(
        "ocr", Kind.TEXT, for_dataset=True, default="auto", choices=OCR_MODES,
        help="When burned-in text is looked for: 'auto' reads every image except skipped modalities, 'always' "
             "every image, 'never' none. 'never' needs {region_rules} or {accept_burned_in_risk}.",
    ),
    RunOption(
        "ocr_engine", Kind.TEXT, for_dataset=True, default="rapidocr", choices=OCR_ENGINES,
        help="The text detector: 'rapidocr' (the default, fast on CPU) or 'easyocr' (needs the easyocr extra).",
    ),
    RunOption(
        "ocr_skip_modalities", Kind.TEXT, for_dataset=True, multiple=True, default=(), cli_flag="--ocr-skip-modality",
        metavar="MODALITY",
        help="With {ocr} 'auto', do not read images of this modality, for example CT or MR (repeatable).",
    ),
    RunOption(
        "accept_burned_in_risk", Kind.FLAG, for_dataset=True, default=False,
        help="Allow {ocr} 'never' without {region_rules}: images whose header says they carry burned-in text "
             "are then written with their pixels untouched.",
    ),
    RunOption(
        "accept_recipe_risk", Kind.FLAG, default=False,
        help="Run a recipe that keeps a patient name, ID, birth date or free text of the patient module "
             "(refused otherwise). Every recipe warning is printed either way; 'deid check-recipe' explains them.",
    ),
    RunOption(
        "region_rules", Kind.FILE, for_dataset=True, metavar="FILE",
        help="A JSON file of rectangles to blank on images from known devices; the README shows the format.",
    ),
    RunOption(
        "builtin_regions", Kind.FLAG, for_dataset=True, default=True, cli_flag="--no-builtin-regions",
        cli_inverted=True,
        help="Do not mask the built-in device regions. By default the header bands of known devices (CTP's "
             "community library of device layouts, recipes/regions/ctp-devices.json) are masked on every "
             "matching image, in addition to what OCR finds and to {region_rules}.",
    ),
    RunOption(
        "authorised_words", Kind.FILE, for_dataset=True, metavar="FILE",
        help="A text file of words OCR may leave visible, one per line. They are added to the word lists the "
             "recipe names.",
    ),
    RunOption(
        "file_timeout_s", Kind.FLOAT, default=600.0, cli_flag="--file-timeout", metavar="SECONDS",
        check=_check_file_timeout,
        help="Seconds one file may take before it is quarantined as 'timeout'; 0 means no limit.",
    ),
    RunOption(
        "patient_map", Kind.FILE, metavar="CSV",
        help="The study's own research IDs: a CSV file with a header line, then 'PatientID,research ID' rows. "
             "The research ID becomes PatientID, PatientName and the patient folder (instead of the keyed "
             "code) and is recorded in the private mapping; a file whose patient is not in the map is "
             "quarantined as 'not_in_patient_map', never given a made-up ID. The map is checked before the "
             "first file (duplicates, empty IDs, research IDs that are not upper-case letters, digits, '.', '-' "
             "or '_').",
    ),
    RunOption(
        "force", Kind.FLAG, default=False,
        help="Redo every file, and allow writing into an OUT_DIR that was made with another recipe or that "
             "holds other files. It never allows a different key: pseudonyms would no longer link.",
    ),
    RunOption(
        "progress", Kind.FLAG, default=False, cli_default=True, cli_flag="--no-progress", cli_inverted=True,
        help="Do not show the progress bar (it is shown only on a terminal anyway).",
    ),
)

#: The same options by name.
OPTIONS: dict[str, RunOption] = {option.name: option for option in RUN_OPTIONS}


def default_of(name: str) -> Any:
    """The library default of option `name` (what `Settings` and `deidcli.run` use)."""
    return OPTIONS[name].default


def resolve_options(given: Mapping[str, Any], surface: Surface = Surface.API) -> dict[str, Any]:
    """Every option's value: the given ones checked, the others at their default for `surface`.

    Raises OptionError for an unknown name (with the closest known one), a value outside the choices,
    or a value its option's own check refuses. Folders, files and the recipe are checked by
    `deidcli.prepare`, which also reads them.
    """
    unknown = [name for name in given if name not in OPTIONS]
    if unknown:
        close = difflib.get_close_matches(unknown[0], OPTIONS, n=1)
        hint = f"; did you mean {OPTIONS[close[0]].spelled(surface)}?" if close else ""
        raise UsageError(f"unknown option {unknown[0]!r}{hint}")
    values: dict[str, Any] = {}
    for option in RUN_OPTIONS:
        value = given.get(option.name, option.default_for(surface))
        if option.multiple:
            value = _as_tuple(option, value)
        values[option.name] = value
        if value is None or (option.multiple and not value):
            continue
        if option.choices:
            for item in value if option.multiple else (value,):
                if item not in option.choices:
                    raise OptionError(_named(option, "must be one of {choices}, not {value!r}"),
                                      choices=", ".join(option.choices), value=item)
        if option.check is not None:
            option.check(value)
    return values


def _as_tuple(option: RunOption, value: Any) -> tuple:
    if isinstance(value, str | bytes | Path) or not isinstance(value, Iterable):
        raise OptionError(_named(option, "takes a list of values, not {value!r}"), value=value)
    return tuple(value)


def _named(option: RunOption, problem: str) -> str:
    """A message template starting with the option's name placeholder."""
    return "{" + option.name + "} " + problem
