"""Regenerate the built-in recipes that derive from the standard: `python recipes/build.py`.

Why generated: basic/default/mammography follow PS3.15 Table E.1-1 (`standard/ps3.15-table-e1-1.csv`)
and the keep-list in `deidcli/recipe/profiles.py`; writing them by hand would let them drift from both.
The output is deterministic: running this twice changes nothing, and a test checks the committed files
are up to date. `kskit-mammography.json` is a verbatim copy of kskit's recipe and is not generated.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent


def _import_deidcli() -> None:
    """Make `deidcli` and its `deidcli.recipes` package (this folder) importable from a checkout."""
    if str(REPO) not in sys.path:
        sys.path.insert(0, str(REPO))
    import deidcli

    try:
        import deidcli.recipes  # noqa: F401  (installed package, or editable install)
    except ModuleNotFoundError:
        deidcli.__path__.append(str(REPO))  # the checkout: deidcli.recipes -> REPO/recipes


_import_deidcli()

from deidcli.recipe.model import Action, Recipe, parse_tag  # noqa: E402
from deidcli.recipe.profiles import build_profile, format_recipe  # noqa: E402

#: Mammography: what changes from basic + retain-modified-dates, with the reason for each line.
MAMMOGRAPHY_OVERRIDES: dict[str, tuple[Action, str]] = {
    "PatientName": (Action.PSEUDONYMISER, "keyed pseudonym: links a woman's screening rounds"),
    "PatientID": (Action.PSEUDONYMISER, "keyed pseudonym: links a woman's screening rounds"),
    "AccessionNumber": (Action.PSEUDONYMISER, "keyed token: links images of one examination"),
    "StudyID": (Action.PSEUDONYMISER, "keyed token: links images of one examination"),
    "PatientSex": (Action.CONSERVER, "retain patient characteristics (sex)"),
    "PatientAge": (Action.PSEUDONYMISER, "kept, ages over 89 capped at 090Y"),
}
#: CID 7050 codes: basic, modified dates, patient characteristics (sex and age only).
MAMMOGRAPHY_CODES = ["113100", "113107", "113108"]


def mammography_recipe() -> Recipe:
    """Breast-screening cohorts: basic + shifted dates, sex and age kept, identifiers pseudonymised.

    The keep-list already holds laterality, view codes (ViewCodeSequence and ViewModifierCodeSequence with
    their code items), compression force, breast thickness and dose attributes.
    """
    base = build_profile("basic", ["retain-modified-dates"])
    targets = {parse_tag(keyword).value: action for keyword, (action, _) in MAMMOGRAPHY_OVERRIDES.items()}
    rules = [
        dataclasses.replace(rule, action=targets[rule.pattern.value]) if rule.pattern.value in targets else rule
        for rule in base.rules
    ]
    return dataclasses.replace(
        base,
        name="mammography",
        rules=rules,
        version="1",
        description=(
            "Breast-screening cohorts: PS3.15 basic profile with modified (shifted) dates; keeps laterality, "
            "views, compression, thickness and dose, patient sex and age; pseudonymises patient and study "
            "identifiers and UIDs."
        ),
        method_codes=list(MAMMOGRAPHY_CODES),
        authorised_words=["mammography"],
    )


def generated() -> dict[str, Recipe]:
    """File name -> recipe, for every generated built-in."""
    basic = build_profile("basic")
    return {
        "basic.json": basic,
        "default.json": dataclasses.replace(
            basic, name="default", description="The default of `deid run`: " + basic.description
        ),
        "mammography.json": mammography_recipe(),
    }


def main() -> None:
    for file_name, recipe in generated().items():
        path = HERE / file_name
        text = format_recipe(recipe)
        changed = not path.exists() or path.read_text(encoding="utf-8") != text
        path.write_text(text, encoding="utf-8")
        print(f"{'wrote' if changed else 'unchanged'} {path.relative_to(REPO)}: {len(recipe.rules)} rules")


if __name__ == "__main__":
    main()
