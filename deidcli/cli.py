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
@click.option("--force", is_flag=True, help="Redo everything / write into an OUT_DIR made with another recipe or key.")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--scheduler", metavar="tcp://HOST:8786", envvar="DEID_SCHEDULER",
              help="Run the per-file work on this Dask cluster (extra deidcli[dask]) instead of --workers local "
                   "processes; IN_DIR and OUT_DIR must be at the same paths on every worker.")
def run(in_dir: Path, out_dir: Path, org_root, recipe, profile, options, key_file, private_dir, workers, ocr,
        ocr_engine, ocr_skip_modalities, accept_burned_in_risk, region_rules, authorised_words, file_timeout,
        force, no_progress, scheduler) -> None:
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
            progress=not no_progress and sys.stderr.isatty(), on_new_key=announce_key, scheduler=scheduler,
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


@main.command("cluster-check")
@click.option("--scheduler", required=True, metavar="tcp://HOST:8786", envvar="DEID_SCHEDULER",
              help="The Dask scheduler `deid run --scheduler` would use.")
@click.option("--recipe", default="default", show_default=True, help="Built-in recipe whose hash workers must match.")
@click.option("--ocr-engine", type=click.Choice(["rapidocr", "easyocr"]), default="rapidocr", show_default=True)
@click.option("--ocr", type=click.Choice(["auto", "always", "never"]), default="auto", show_default=True,
              help="'never': OCR readiness is not required.")
def cluster_check(scheduler: str, recipe: str, ocr_engine: str, ocr: str) -> None:
    """Show the workers of a Dask cluster (deidcli version, recipe hash, OCR readiness); exit 2 if any
    worker runs another deidcli, other code or another recipe, or cannot run OCR when it is needed."""
    try:
        from deidcli.distributed import check_cluster, connect

        client = connect(scheduler)
    except DeidError as error:
        _fail(error)
        return
    try:
        check = check_cluster(client, recipe, ocr_engine if ocr != "never" else None)
    finally:
        client.close()
    click.echo(f"Scheduler {check.scheduler}: {len(check.workers)} worker(s)")
    click.echo(check.table())
    if check.problems:
        click.echo("Refused:\n  " + "\n  ".join(check.problems), err=True)
        sys.exit(2)
    click.echo(f"OK: every worker runs deidcli {check.client['deidcli']} (code {check.client['code']}) "
               f"with recipe {recipe} {check.client['recipe_hash']}.")


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


def _mapping_table(private_dir: Path, name: str):
    import pandas as pd

    path = private_dir / name
    if not path.exists():
        raise click.ClickException(f"{path} not found: is {private_dir} a deid private folder?")
    return pd.read_csv(path, dtype=str, keep_default_na=False)


@mapping.command("show")
@click.argument("private_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--files", "what", flag_value="files.csv", help="Show input <-> output paths.")
@click.option("--values", "what", flag_value="values.csv", default=True, help="Show original -> pseudonym values.")
def mapping_show(private_dir: Path, what: str) -> None:
    """Print a mapping table of PRIVATE_DIR."""
    table = _mapping_table(private_dir, what)
    click.echo(table.to_string(index=False) if not table.empty else "(empty)")


@mapping.command("lookup")
@click.argument("private_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("value")
def mapping_lookup(private_dir: Path, value: str) -> None:
    """Which pseudonym did VALUE (an original value or input path) get?"""
    _print_matches(private_dir, value, original=True)


@mapping.command("reverse")
@click.argument("private_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("pseudonym")
def mapping_reverse(private_dir: Path, pseudonym: str) -> None:
    """Which original value (or input file) does PSEUDONYM (a value or an output path) stand for?"""
    _print_matches(private_dir, pseudonym, original=False)


def _print_matches(private_dir: Path, needle: str, original: bool) -> None:
    values = _mapping_table(private_dir, "values.csv")
    files = _mapping_table(private_dir, "files.csv")
    value_hits = values[values["original" if original else "pseudonym"].str.strip() == needle.strip()]
    file_column = "input_path" if original else "output_path"
    file_hits = files[(files[file_column] == needle) | files[file_column].str.contains(needle, regex=False)]
    if value_hits.empty and file_hits.empty:
        raise click.ClickException(f"{needle!r} not found in {private_dir}")
    if not value_hits.empty:
        click.echo(value_hits.to_string(index=False))
    if not file_hits.empty:
        click.echo(file_hits.to_string(index=False))


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
