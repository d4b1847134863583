"""`deid check-recipe` and `deid recipe list|show|export`: looking at recipes before running them.

Why a separate module: the recipe commands only read recipes and the standard's table; keeping them out
of `deidcli.cli` keeps that file about running de-identification.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deidcli.errors import DeidError
from deidcli.options import DEFAULT_RECIPE
from deidcli.recipe.check import CheckReport
from deidcli.recipe.load import builtin_names, load_recipe
from deidcli.recipe.model import Action, Recipe
from deidcli.recipe.profiles import OPTIONS, apply_options, build_profile, format_recipe

#: Built-ins that are the basic profile, so `export NAME --option ...` rebuilds them from the table.
PROFILE_BUILTINS = ("basic", "default")


def _load(name: str) -> Recipe:
    try:
        return load_recipe(name)
    except DeidError as error:
        raise click.UsageError(str(error)) from error


def check(recipe: str | Path) -> CheckReport:
    """The full check of a recipe, as `deidcli.check_recipe` does it."""
    from deidcli.api import check_recipe as check_with_run_settings

    return check_with_run_settings(recipe)


@click.command("check-recipe")
@click.argument("recipe")
@click.option("--strict", is_flag=True, help="Exit with status 1 when there are warnings (errors always exit 2).")
@click.option("--all", "show_all", is_flag=True,
              help="List every attribute the recipe treats differently from the basic profile, not only the "
                   "first five.")
def check_recipe(recipe: str, strict: bool, show_all: bool) -> None:
    """Check RECIPE (a JSON file or a built-in name): every problem with its location and a fix.

    Then, when the recipe has no errors, compare it with the PS3.15 basic profile. Exit status: 0 clean,
    1 warnings with --strict, 2 errors.
    """
    try:
        report = check(recipe)
    except DeidError as error:  # no such recipe, or unreadable: a usage error (exit 2)
        raise click.UsageError(str(error)) from error
    click.echo(report.render(show_all))
    sys.exit(report.exit_code(strict))


@click.group("recipe")
def recipe() -> None:
    """List, show and export recipes (built-in names or JSON files)."""


#: Built-ins copied from elsewhere: what they are, since their files carry no description of ours.
PUBLISHED = {
    "kskit-mammography": "The mammography recipe of kskit/deidcm (Epiconcept), in its flat format",
}


@recipe.command("list")
def list_recipes() -> None:
    """The built-in recipes, and the PS3.15 options `export basic --option` accepts."""
    click.echo("Built-in recipes (deid run --recipe NAME; deid recipe show NAME for the rules):")
    loaded = {name: _load(name) for name in builtin_names()}
    for name, built in loaded.items():
        click.echo(f"  {name:<20} {len(built.rules):>4} rules  {_describe(name, built, loaded)}")
    click.echo("\nPS3.15 options (deid recipe export basic --option NAME, or deid run --profile basic --option NAME):")
    for option in OPTIONS.values():
        click.echo(f"  {option.name:<32} {option.code}  {option.meaning}")


def _describe(name: str, built: Recipe, every: dict[str, Recipe]) -> str:
    """One line: the description's first sentence, what a built-in copies, or which one it equals."""
    if name in PUBLISHED:
        warnings = len(check(name).warnings)
        return f"{PUBLISHED[name]}, kept as published: {warnings} warnings (deid check-recipe {name})."
    same = [other for other, recipe_ in every.items() if other != name and _same_rules(recipe_, built)]
    if name == DEFAULT_RECIPE:
        twin = f": the same rules as {', '.join(same)}" if same else ""
        return f"What deid run uses when no recipe is named{twin}."
    first_sentence = built.description.split(";")[0].split(". ")[0].rstrip(".")
    return f"{first_sentence}." if first_sentence else "(no description)"


def _same_rules(first: Recipe, second: Recipe) -> bool:
    """Same rules and settings, whatever the name and description."""
    ignored = ("name", "description")
    one, other = first.to_json(), second.to_json()
    return all(one[key] == other.get(key) for key in one if key not in ignored)


@recipe.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show recipe NAME: its settings and one line per rule."""
    loaded = _load(name)
    click.echo(f"name: {loaded.name}")
    click.echo(f"version: {loaded.version}")
    published = f"{PUBLISHED[name]}, kept as published." if name in PUBLISHED else ""
    click.echo(f"description: {loaded.description or published}")
    click.echo(f"method codes: {', '.join(loaded.method_codes) or '-'}")
    click.echo(f"date shift days: {loaded.date_shift_days[0]} to {loaded.date_shift_days[1]}")
    click.echo(f"authorised words: {', '.join(loaded.authorised_words) or '-'}")
    counts = ", ".join(f"{a.value} {sum(1 for r in loaded.rules if r.action is a)}" for a in Action)
    click.echo(f"general rules: {len(loaded.rules)} ({counts}); anything else is removed")
    for rule in loaded.rules:
        creator = f"  creator {rule.creator!r}" if rule.creator is not None else ""
        click.echo(f"  {rule.pattern.text:<12} {rule.keyword:<45} {rule.vr:<8} {rule.action.value}{creator}")
    click.echo(f"specific rules: {len(loaded.specific_rules)}")
    for rule in loaded.specific_rules:
        assert rule.parent is not None
        click.echo(f"  {rule.pattern.text:<12} inside {rule.parent.text:<12} {rule.action.value}")


@recipe.command("export")
@click.argument("name")
@click.option("--option", "options", multiple=True, type=click.Choice(list(OPTIONS)),
              help="A PS3.15 option to apply (repeatable; a later option wins).")
def export(name: str, options: tuple[str, ...]) -> None:
    """Print recipe NAME as JSON (to edit and pass to `deid run --recipe`), with PS3.15 options applied."""
    try:
        if options and name in PROFILE_BUILTINS and not Path(name).exists():
            exported = build_profile("basic", options)  # rebuilt from the table: description says the options
        else:
            exported = apply_options(load_recipe(name), options)
    except DeidError as error:
        raise click.UsageError(str(error)) from error
    click.echo(format_recipe(exported), nl=False)
