"""`deid check-recipe` and `deid recipe list|show|export`: looking at recipes before running them.

Why a separate module: the recipe commands only read recipes and the standard's table; keeping them out
of `deidcli.cli` keeps that file about running de-identification.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from deidcli.errors import DeidError
from deidcli.recipe.check import check_recipe_text
from deidcli.recipe.load import builtin_names, builtin_text, load_recipe
from deidcli.recipe.model import Action, Recipe
from deidcli.recipe.profiles import OPTIONS, apply_options, build_profile, format_recipe

#: Built-ins that are the basic profile, so `export NAME --option ...` rebuilds them from the table.
PROFILE_BUILTINS = ("basic", "default")


def _recipe_text(recipe: str) -> tuple[str, str]:
    """(text, name) of a recipe file or a built-in name; a missing one is a usage error (exit 2)."""
    path = Path(recipe)
    if path.exists():
        try:
            return path.read_text(encoding="utf-8"), path.stem
        except (OSError, UnicodeDecodeError) as error:
            raise click.UsageError(f"cannot read recipe {path}: {error}") from error
    if path.suffix == ".json":
        raise click.UsageError(f"recipe file {path} does not exist")
    try:
        return builtin_text(recipe), recipe
    except DeidError as error:
        raise click.UsageError(str(error)) from error


def _load(name: str) -> Recipe:
    try:
        return load_recipe(name)
    except DeidError as error:
        raise click.UsageError(str(error)) from error


@click.command("check-recipe")
@click.argument("recipe")
@click.option("--strict", is_flag=True, help="Exit 1 when there are warnings (errors always exit 2).")
def check_recipe(recipe: str, strict: bool) -> None:
    """Check RECIPE (a JSON file or a built-in name): every problem with its location and a fix.

    Exit 0 clean, 1 warnings with --strict, 2 errors.
    """
    text, name = _recipe_text(recipe)
    report = check_recipe_text(text, name)
    click.echo(report.render())
    sys.exit(report.exit_code(strict))


@click.group("recipe")
def recipe() -> None:
    """List, show and export recipes (built-in names or JSON files)."""


@recipe.command("list")
def list_recipes() -> None:
    """The built-in recipes, and the PS3.15 options `export basic --option` accepts."""
    for name in builtin_names():
        loaded = _load(name)
        first_sentence = loaded.description.split(";")[0].split(". ")[0] or "(no description)"
        click.echo(f"{name:<20} {len(loaded.rules):>4} rules  {first_sentence}")
    click.echo("\nPS3.15 options (deid recipe export basic --option NAME):")
    for option in OPTIONS.values():
        click.echo(f"  {option.name:<32} {option.code}  {option.meaning}")


@recipe.command("show")
@click.argument("name")
def show(name: str) -> None:
    """Show recipe NAME: its settings and one line per rule."""
    loaded = _load(name)
    click.echo(f"name: {loaded.name}")
    click.echo(f"version: {loaded.version}")
    click.echo(f"description: {loaded.description}")
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
