"""Reading recipe files (kskit format, both shapes) into `Recipe`, collecting every structural problem.

Loading never guesses: a malformed tag or an unknown action is an error, because a rule silently dropped
is an attribute silently kept or removed. `check-recipe` reports the same problems with more warnings
on top (see `deidcli.recipe.check`).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

from deidcli.errors import RecipeError, UsageError
from deidcli.recipe.model import Action, Recipe, Rule, TagPattern, parse_tag

#: The settings keys a recipe file may hold beside its rules.
SETTINGS_KEYS = {
    "name",
    "version",
    "description",
    "deidentification_method_codes",
    "date_shift_days",
    "authorised_words",
    "org_root",
    "general_rules",
    "specific_rules",
}

#: kskit writes its "remove all private attributes" line under a key that is not a tag; it states
#: what zero trust does anyway, so we accept it as a no-op rule (check-recipe warns).
KSKIT_PRIVATE_KEY_PREFIX = "0xggggeeee)"


@dataclass(frozen=True)
class Problem:
    """One finding about a recipe: where, how bad, what is wrong, how to fix it."""

    severity: str  # "error" | "warning"
    where: str
    message: str
    hint: str = ""
    #: A warning `deid run` refuses unless the risk is accepted (a patient name, ID, birth date or free text kept).
    refused_by_run: bool = False

    def __str__(self) -> str:
        text = f"{self.severity}: {self.where}: {self.message}"
        return f"{text} (fix: {self.hint})" if self.hint else text


def builtin_names() -> list[str]:
    """Names of the recipes bundled in the `recipes/` folder (installed as `deidcli.recipes`)."""
    folder = resources.files("deidcli.recipes")
    return sorted(p.name[: -len(".json")] for p in folder.iterdir() if p.name.endswith(".json"))


def builtin_text(name: str) -> str:
    path = resources.files("deidcli.recipes").joinpath(f"{name}.json")
    if not path.is_file():
        raise RecipeError(f"no built-in recipe named {name!r}; known: {', '.join(builtin_names())}")
    return path.read_text(encoding="utf-8")


def recipe_source(name_or_path: str | Path) -> tuple[str, str]:
    """(JSON text, default name) of a recipe file or a built-in name; RecipeError when there is none."""
    path = Path(name_or_path)
    if path.suffix == ".json" or path.exists():
        try:
            return path.read_text(encoding="utf-8"), path.stem
        except (OSError, UnicodeDecodeError) as error:
            reason = getattr(error, "strerror", None) or str(error)
            raise RecipeError(f"cannot read recipe {path}: {reason}") from error
    return builtin_text(str(name_or_path)), str(name_or_path)


def load_recipe(name_or_path: str | Path) -> Recipe:
    """Load a recipe from a file path or a built-in name; raise RecipeError listing every error."""
    text, default_name = recipe_source(name_or_path)
    recipe, problems = parse_recipe_text(text, default_name)
    errors = [p for p in problems if p.severity == "error"]
    if errors or recipe is None:
        listing = "\n".join(f"  {p}" for p in errors)
        raise RecipeError(f"recipe {name_or_path} has {len(errors)} error(s):\n{listing}", problems)
    return recipe


def parse_recipe_text(text: str, default_name: str = "recipe") -> tuple[Recipe | None, list[Problem]]:
    """Parse recipe JSON text. Returns the recipe (None if unusable) and every structural problem."""
    problems: list[Problem] = []
    duplicates: list[str] = []
    try:
        document = json.loads(text, object_pairs_hook=lambda pairs: _object_noting_duplicates(pairs, duplicates))
    except json.JSONDecodeError as error:
        problems.append(
            Problem("error", f"line {error.lineno} column {error.colno}", f"not valid JSON: {error.msg}",
                    "check commas, quotes and brackets")
        )
        return None, problems
    problems += _duplicate_key_problems(text, duplicates)
    if not isinstance(document, dict):
        problems.append(Problem("error", "top level", "a recipe must be a JSON object",
                                'use {"general_rules": {...}} or {"0xGGGGEEEE": [keyword, VR, ACTION]}'))
        return None, problems

    if "general_rules" in document:
        general = document.get("general_rules")
        specific = document.get("specific_rules", {})
        settings = document
        for key in document:
            if key not in SETTINGS_KEYS:
                problems.append(Problem("error", f"top level key {key!r}",
                                        "unknown setting (a recipe's settings are never silently ignored)",
                                        f"known keys: {', '.join(sorted(SETTINGS_KEYS))}"))
    else:  # the flat shape: the whole object is general rules
        general, specific, settings = document, {}, {}

    if not isinstance(general, dict):
        problems.append(Problem("error", "general_rules", "must be an object of tag -> [keyword, VR, ACTION]"))
        return None, problems
    if not isinstance(specific, dict):
        problems.append(Problem("error", "specific_rules", "must be an object of tag -> {sequence, rule}"))
        return None, problems

    rules = _parse_general_rules(general, problems)
    specific_rules = _parse_specific_rules(specific, problems)
    recipe = Recipe(
        name=str(settings.get("name") or default_name),
        rules=rules,
        specific_rules=specific_rules,
        version=str(settings.get("version", "")),
        description=str(settings.get("description", "")),
        method_codes=[str(c) for c in settings.get("deidentification_method_codes", [])],
        date_shift_days=_parse_shift(settings.get("date_shift_days"), problems),
        authorised_words=_parse_words(settings.get("authorised_words", []), problems),
        org_root=_parse_org_root(settings.get("org_root"), problems),
        source_text=text,
    )
    return recipe, problems


def _object_noting_duplicates(pairs: list[tuple[str, object]], duplicates: list[str]) -> dict:
    """json's object hook: the object, with every key seen twice in it noted (json would keep the last
    silently, so a rule written twice would quietly lose its first meaning)."""
    seen: set[str] = set()
    for key, _ in pairs:
        if key in seen:
            duplicates.append(key)
        seen.add(key)
    return dict(pairs)


def _duplicate_key_problems(text: str, duplicates: list[str]) -> list[Problem]:
    """One error per duplicated key, located at the line of each repeat."""
    problems = []
    for key in dict.fromkeys(duplicates):
        spelled = re.compile(re.escape(json.dumps(key)) + r"\s*:")
        lines = [text.count("\n", 0, match.start()) + 1 for match in spelled.finditer(text)]
        repeats = ", ".join(str(line) for line in lines[1:]) or "?"
        first = f"first at line {lines[0]}" if lines else "written more than once"
        problems.append(Problem(
            "error", f"line {repeats}", f"duplicate key {key!r} ({first}): JSON keeps only the last one",
            "keep one entry per key; merge what the two say",
        ))
    return problems


def _parse_action(value: object, where: str, problems: list[Problem]) -> Action | None:
    try:
        return Action(str(value).strip().upper())
    except ValueError:
        problems.append(Problem("error", where, f"unknown action {value!r}",
                                f"use one of {', '.join(a.value for a in Action)}"))
        return None


def _parse_general_rules(general: dict, problems: list[Problem]) -> list[Rule]:
    rules: list[Rule] = []
    seen: dict[tuple[int, int, str | None], str] = {}
    for key, entry in general.items():
        where = f"general_rules[{key!r}]"
        if key.strip().lower().startswith(KSKIT_PRIVATE_KEY_PREFIX) or key.strip().lower() == "private":
            problems.append(Problem("warning", where, "not a tag: kskit's 'all private attributes' line",
                                    "remove it: private tags are removed unless a rule names them with their creator"))
            continue
        if not isinstance(entry, list) or len(entry) < 3:
            problems.append(Problem("error", where, "a rule must be [keyword, VR, ACTION]",
                                    'e.g. ["PatientName", "PN", "PSEUDONYMISER"]'))
            continue
        try:
            pattern = parse_tag(key)
        except ValueError as error:
            problems.append(Problem("error", where, f"malformed tag: {error}", "write tags as 0xGGGGEEEE"))
            continue
        action = _parse_action(entry[2], where, problems)
        if action is None:
            continue
        creator = None
        if len(entry) > 3 and isinstance(entry[3], dict):
            creator = entry[3].get("creator")
        if creator is not None and not pattern.is_private:
            problems.append(Problem("error", where, "a private creator is given for a public tag",
                                    "private tags have an odd group number"))
            continue
        if pattern.is_private and creator is None and pattern.value & 0xFFFF >= 0x1000:
            problems.append(Problem("warning", where, "private tag without a private creator never matches",
                                    'add {"creator": "..."} as 4th item and write the tag as 0xGGGGxxEE'))
        identity = (pattern.value, pattern.mask, creator.lower() if creator else None)
        if identity in seen:
            problems.append(Problem("error", where, f"duplicate of {seen[identity]} (tags are case-insensitive)",
                                    "keep one rule per tag"))
            continue
        seen[identity] = where
        rules.append(Rule(pattern, action, str(entry[0]), str(entry[1]), creator, None, where))
    return rules


def _parse_specific_rules(specific: dict, problems: list[Problem]) -> list[Rule]:
    rules: list[Rule] = []
    for key, value in specific.items():
        entries = value if isinstance(value, list) else [value]
        for index, entry in enumerate(entries):
            where = f"specific_rules[{key!r}]" + (f"[{index}]" if isinstance(value, list) else "")
            if not isinstance(entry, dict) or "sequence" not in entry or "rule" not in entry:
                problems.append(Problem("error", where, 'a specific rule must be {"sequence": "0xPARENT", "rule": ACTION}'))
                continue
            try:
                pattern = parse_tag(key)
                parent: TagPattern | None = parse_tag(str(entry["sequence"]))
            except ValueError as error:
                problems.append(Problem("error", where, f"malformed tag: {error}", "write tags as 0xGGGGEEEE"))
                continue
            action = _parse_action(entry["rule"], where, problems)
            if action is None:
                continue
            rules.append(Rule(pattern, action, "", "", None, parent, where))
    return rules


def _parse_shift(value: object, problems: list[Problem]) -> tuple[int, int]:
    if value is None:
        return (-3650, -365)
    if (
        isinstance(value, list)
        and len(value) == 2
        and all(isinstance(v, int) for v in value)
        and value[0] <= value[1]
    ):
        return (value[0], value[1])
    problems.append(Problem("error", "date_shift_days", "must be [min_days, max_days] with min <= max",
                            "e.g. [-3650, -365]"))
    return (-3650, -365)


def _parse_words(value: object, problems: list[Problem]) -> list[str]:
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    problems.append(Problem("error", "authorised_words", "must be a list of word list names",
                            'e.g. ["mammography"]'))
    return []


def _parse_org_root(value: object, problems: list[Problem]) -> str | None:
    """The recipe's UID root, checked like `deid run --org-root` (a bad one must not silently become 2.25)."""
    if value is None:
        return None
    from deidcli.pseudonyms import validate_org_root

    example = 'e.g. "1.2.826.0.1.3680043.10.999"'
    if not isinstance(value, str) or not value.strip():
        problems.append(Problem("error", "org_root", "must be a UID root (digits and dots)", example))
        return None
    try:
        return validate_org_root(value)
    except UsageError as error:
        problems.append(Problem("error", "org_root", str(error), example))
        return None
