"""The `deid` command: a thin click layer over `deidcli.api`.

Exit codes: 0 every file written or skipped; 3 some files quarantined; 2 usage error (bad option,
bad recipe, conflicting OUT_DIR); 4 disk full (resume later); 130 / 143 interrupted (resume with the
same command).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import click

from deidcli._version import __version__
from deidcli.errors import DeidError, RecipeError, UsageError

RESUME_HINT = "Interrupted: outputs so far are complete; resume with the same command."


def _fail(error: DeidError) -> None:
    click.echo(f"Error: {error}", err=True)
    sys.exit(2)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deid")
def main() -> None:
    """De-identify folders of DICOM files: zero-trust recipes, keyed pseudonyms, OCR of burned-in text, an audit."""


@main.command()
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--org-root", help="UID root for new UIDs (default: 2.25 UUID-derived UIDs).")
@click.option("--recipe", "recipe", help="Recipe: a built-in name (deid recipe list) or a JSON file. Default: 'default'.")
@click.option("--profile", type=click.Choice(["basic"]), help="Build the recipe from the PS3.15 basic profile...")
@click.option("--option", "options", multiple=True, help="...with these PS3.15 options (e.g. retain-modified-dates).")
@click.option("--key-file", envvar="DEID_KEY_FILE", type=click.Path(dir_okay=False, path_type=Path),
              help="Secret HMAC key (deid keygen). Default: created in the private folder.")
@click.option("--private-dir", type=click.Path(file_okay=False, path_type=Path),
              help="Where the private mapping goes (default: OUT_DIR.private, mode 0700).")
@click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True,
              help="Worker processes.")
@click.option("--ocr", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="Burned-in text detection. 'never' needs --region-rules or --accept-burned-in-risk.")
@click.option("--ocr-engine", type=click.Choice(["rapidocr", "easyocr"]), default="rapidocr", show_default=True)
@click.option("--ocr-skip-modality", "ocr_skip_modalities", multiple=True, metavar="MODALITY",
              help="With --ocr auto, do not OCR this modality (e.g. CT, MR). Repeatable.")
@click.option("--accept-burned-in-risk", is_flag=True, help="Allow --ocr never without region rules.")
@click.option("--region-rules", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="JSON rules: rectangles to blank for known devices.")
@click.option("--authorised-words", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="Words OCR may leave visible, one per line.")
@click.option("--file-timeout", type=float, default=600.0, show_default=True, help="Seconds allowed per file.")
@click.option("--patient-map", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="CSV (header line, then 'PatientID,research ID' rows): the study's own research IDs become "
                   "PatientID, PatientName and the patient folder; a patient not in the map is quarantined.")
@click.option("--force", is_flag=True, help="Redo everything / write into an OUT_DIR made with another recipe or key.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def run(in_dir: Path, out_dir: Path, org_root, recipe, profile, options, key_file, private_dir, workers, ocr,
        ocr_engine, ocr_skip_modalities, accept_burned_in_risk, region_rules, authorised_words, file_timeout,
        force, no_progress, patient_map) -> None:
    """De-identify every DICOM file under IN_DIR into OUT_DIR, with an audit in OUT_DIR/audit.csv."""
    from deidcli.api import run_batch
    from deidcli.batch import summarise

    def announce_key(path: Path) -> None:
        click.secho(f"NEW KEY: created {path}. Keep it secret and keep it: the same key is needed to get the "
                    "same pseudonyms in later runs.", fg="yellow", err=True, bold=True)

    try:
        summary = run_batch(
            in_dir, out_dir, recipe=recipe, profile=profile, options=options, key=key_file, org_root=org_root,
            private_dir=private_dir, workers=workers, ocr=ocr, ocr_engine=ocr_engine,
            ocr_skip_modalities=ocr_skip_modalities, accept_burned_in_risk=accept_burned_in_risk,
            region_rules=region_rules, authorised_words=authorised_words, file_timeout_s=file_timeout, force=force,
            progress=not no_progress and sys.stderr.isatty(), on_new_key=announce_key, patient_map=patient_map,
        )
    except (UsageError, RecipeError, DeidError) as error:
        _fail(error)
        return
    if summary.interrupted:
        click.echo(RESUME_HINT if summary.exit_code in (130, 143) else
                   "Stopped: the output disk is full. Free space and resume with the same command.", err=True)
        sys.exit(summary.exit_code)
    click.echo(summarise(summary))
    private = private_dir or out_dir.parent / (out_dir.name + ".private")
    click.echo(f"Output: {out_dir}  Audit: {out_dir / 'audit.csv'}  Private mapping: {private}")
    sys.exit(summary.exit_code)


@main.command()
@click.argument("path", type=click.Path(dir_okay=False, path_type=Path))
def keygen(path: Path) -> None:
    """Write a new random HMAC key to PATH (mode 0600)."""
    from deidcli.keys import generate_key_file, key_fingerprint, load_key

    try:
        generate_key_file(path)
    except DeidError as error:
        _fail(error)
    click.echo(f"Key written to {path} (fingerprint {key_fingerprint(load_key(path))}). Keep it secret.")


@main.command()
def reasons() -> None:
    """List the audit reason codes and what they mean."""
    from deidcli.reasons import REASONS

    for code, (status, meaning) in REASONS.items():
        click.echo(f"{code:28} {status.value:12} {meaning}")


@main.group()
def mapping() -> None:
    """Read the private mapping (original <-> pseudonym). It holds PHI: keep it apart from OUT_DIR."""


_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                       show_default=True, help="table fits the terminal; csv and json print every value whole.")


def _terminal_width() -> int:
    import shutil

    return shutil.get_terminal_size((120, 24)).columns


@mapping.command("show")
@click.argument("private_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--files", "what", flag_value="files", help="Show input <-> output paths.")
@click.option("--values", "what", flag_value="values", default=True, help="Show original -> pseudonym values.")
@_FORMAT
def mapping_show(private_dir: Path, what: str, fmt: str) -> None:
    """Print a mapping table of PRIVATE_DIR."""
    from deidcli.mapping import (
        FILES_COLUMNS,
        FILES_NAME,
        VALUES_COLUMNS,
        VALUES_NAME,
        MappingNotFound,
        format_rows,
        read_table,
    )

    name, columns = (FILES_NAME, FILES_COLUMNS) if what == "files" else (VALUES_NAME, VALUES_COLUMNS)
    try:
        rows = read_table(private_dir, name)
    except MappingNotFound as error:
        raise click.ClickException(str(error)) from None
    if not rows and fmt == "table":
        click.echo("(empty)")
        return
    click.echo(format_rows(columns, [[row[c] for c in columns] for row in rows], fmt, _terminal_width()))


@mapping.command("lookup")
@click.argument("private_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("value")
@click.option("--substring", is_flag=True, help="Also list values and paths that merely contain VALUE.")
@_FORMAT
def mapping_lookup(private_dir: Path, value: str, substring: bool, fmt: str) -> None:
    """Which pseudonym did VALUE get? VALUE is an original value (a person name in any order or case:
    `Jane Doe`, `DOE, JANE`) or an input file (absolute, or relative to IN_DIR or the current folder)."""
    _print_matches(private_dir, value, reverse=False, substring=substring, fmt=fmt)


@mapping.command("reverse")
@click.argument("private_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("pseudonym")
@click.option("--substring", is_flag=True, help="Also list pseudonyms and paths that merely contain PSEUDONYM.")
@_FORMAT
def mapping_reverse(private_dir: Path, pseudonym: str, substring: bool, fmt: str) -> None:
    """Which original value (or input file) does PSEUDONYM (a value or an output path) stand for?"""
    _print_matches(private_dir, pseudonym, reverse=True, substring=substring, fmt=fmt)


def _print_matches(private_dir: Path, needle: str, *, reverse: bool, substring: bool, fmt: str) -> None:
    """Exit 0 with the matches, best first; exit 1 when nothing matches (scripts can test it)."""
    from deidcli.mapping import MappingNotFound, lookup, matches_as_text

    try:
        matches = lookup(private_dir, needle, reverse=reverse, substring=substring)
    except MappingNotFound as error:
        raise click.ClickException(str(error)) from None
    if not matches:
        hint = "" if substring else " (--substring also lists values that contain it)"
        raise click.ClickException(f"{needle!r} not found in {private_dir}{hint}")
    click.echo(matches_as_text(matches, fmt, _terminal_width()))


def _register_recipe_commands() -> None:
    """check-recipe and recipe list/show/export live in deidcli.commands.recipes."""
    try:
        from deidcli.commands.recipes import check_recipe, recipe
    except ImportError:  # pragma: no cover - during development only
        return
    main.add_command(check_recipe, "check-recipe")
    main.add_command(recipe, "recipe")


_register_recipe_commands()


if __name__ == "__main__":  # pragma: no cover
    main()
