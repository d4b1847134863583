"""The `deid` command: a thin click layer over `deidcli.api`.

Exit codes: 0 every file written or skipped; 3 some files quarantined; 2 usage error (bad option,
bad recipe, conflicting OUT_DIR); 4 OUT_DIR or the private folder cannot be written: full, read-only or
permission denied, before or during the batch (resume later); 130 / 143 interrupted (resume with the
same command).
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn

import click

from deidcli._version import __version__
from deidcli.errors import DeidError
from deidcli.options import RUN_OPTIONS, Kind, RunOption, Surface, render_error

RESUME_HINT = "Interrupted: outputs so far are complete; resume with the same command."


def _fail(error: DeidError) -> None:
    click.echo(f"Error: {render_error(error, Surface.CLI)}", err=True)
    sys.exit(2)


class _LazyGroup(click.Group):
    """A group whose heavier subcommands are imported only when named (or listed by --help).

    `deid --version` and `deid run` must not pay for `deid check-recipe`'s imports (pydicom's data
    dictionary, the standard's table)."""

    #: command name -> (module, attribute)
    LAZY = {"check-recipe": ("deidcli.commands.recipes", "check_recipe"),
            "recipe": ("deidcli.commands.recipes", "recipe")}

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *self.LAZY})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name in self.LAZY and cmd_name not in self.commands:
            import importlib

            module, attribute = self.LAZY[cmd_name]
            self.add_command(getattr(importlib.import_module(module), attribute), cmd_name)
        return super().get_command(ctx, cmd_name)


@click.group(cls=_LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="deid")
def main() -> None:
    """De-identify folders of DICOM files: zero-trust recipes, keyed pseudonyms, OCR of burned-in text, an audit."""


def _click_option(option: RunOption) -> Callable:
    """The click option of one run option, built from its single definition in `deidcli.options`."""
    settings: dict[str, Any] = {"help": option.help_for(Surface.CLI), "metavar": option.metavar, "envvar": option.envvar,
                                "multiple": option.multiple}
    if option.kind is Kind.FLAG:
        settings.update(is_flag=True, flag_value=not option.cli_inverted, default=option.default_for(Surface.CLI))
        settings.pop("metavar")
    else:
        settings["default"] = option.default_for(Surface.CLI)
        settings["show_default"] = option.default_for(Surface.CLI) not in (None, ())
        settings["type"] = _CLICK_TYPES[option.kind] if not option.choices else click.Choice(option.choices)
    return click.option(option.flag, option.name, **settings)


_CLICK_TYPES: dict[Kind, Any] = {
    Kind.TEXT: str,
    Kind.INT: int,
    Kind.FLOAT: float,
    Kind.FILE: click.Path(exists=True, dir_okay=False, path_type=Path),
    Kind.FOLDER: click.Path(file_okay=False, path_type=Path),
    Kind.KEY: click.Path(dir_okay=False, path_type=Path),
}


def run_options(command: Callable) -> Callable:
    """Decorate `command` with every run option, in the order of `RUN_OPTIONS`."""
    for option in reversed(RUN_OPTIONS):
        command = _click_option(option)(command)
    return command


@main.command()
@click.argument("in_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("out_dir", type=click.Path(file_okay=False, path_type=Path))
@run_options
def run(in_dir: Path, out_dir: Path, **options: Any) -> None:
    """De-identify every DICOM file under IN_DIR into OUT_DIR, with an audit in OUT_DIR/audit.csv.

    OUT_DIR must not be inside IN_DIR. The private mapping (original <-> pseudonym) goes to a separate
    folder, OUT_DIR.private unless --private-dir says otherwise. Running the same command again resumes:
    files already written are skipped.

    Exit status: 0 when every file was written or skipped, 3 when some were quarantined (see audit.csv),
    2 for a usage error (nothing is created then), 4 when OUT_DIR or the private folder cannot be
    written (full, read-only, permission denied), 130 or 143 when interrupted.
    """
    from deidcli.api import new_key_message, run_batch
    from deidcli.batch import summarise

    def announce_key(path: Path, fingerprint: str) -> None:
        click.secho(new_key_message(path, fingerprint), fg="yellow", err=True, bold=True)

    options["progress"] = options["progress"] and sys.stderr.isatty()
    try:
        result = run_batch(in_dir, out_dir, surface=Surface.CLI, on_new_key=announce_key, **options)
    except DeidError as error:
        _fail(error)
        return
    if result.interrupted:
        click.echo(RESUME_HINT if result.exit_code in (130, 143) else
                   result.summary.message, err=True)
        sys.exit(result.exit_code)
    click.echo(summarise(result.summary))
    click.echo(f"Output: {out_dir}  Audit: {out_dir / 'audit.csv'}  Private mapping: {result.private_dir}  "
               f"Key fingerprint: {result.key_fingerprint}")
    sys.exit(result.exit_code)


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


_FORMAT = click.option("--format", "fmt", type=click.Choice(["table", "csv", "json"]), default="table",
                       show_default=True, help="table fits the terminal; csv and json print every value whole.")


def _warn(problem: str) -> None:
    """Damaged records of a mapping table are skipped and named (file:line) on stderr."""
    click.echo(f"warning: {problem}", err=True)


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
        rows = read_table(private_dir, name, warn=_warn)
    except MappingNotFound as error:
        raise click.ClickException(str(error)) from None
    if not rows and fmt == "table":
        click.echo("(empty)")
        return
    _echo_text(format_rows(columns, [[row[c] for c in columns] for row in rows], fmt, _terminal_width()))


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
        matches = lookup(private_dir, needle, reverse=reverse, substring=substring, warn=_warn)
    except MappingNotFound as error:
        raise click.ClickException(str(error)) from None
    if not matches:
        hint = "" if substring else " (--substring also lists values that contain it)"
        raise click.ClickException(f"{needle!r} not found in {private_dir}{hint}")
    _echo_text(matches_as_text(matches, fmt, _terminal_width()))


def _echo_text(text: str) -> None:
    """Print mapping text byte-exact: an input name that is not UTF-8 comes out as its own bytes (the form
    the shell gave it), never as a UnicodeEncodeError on a strict UTF-8 terminal."""
    click.echo((text + "\n").encode("utf-8", "surrogateescape"), nl=False)


@main.command("verify")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--private-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run's private folder (default: OUT_DIR.private).")
@click.option("--engine", type=click.Choice(["easyocr", "rapidocr"]),
              help="Text detector for the pixel check (default: easyocr when installed, else rapidocr).")
@click.option("--no-pixels", is_flag=True, help="Skip the pixel check (no OCR).")
@click.option("--recipe", "recipe_file", type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="The recipe JSON the run used (default: recorded by the run).")
@click.option("--in-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Where the originals are (default: recorded by the run).")
@click.option("--workers", type=click.IntRange(min=1), default=os.cpu_count() or 1, show_default=True,
              help="Worker processes (each loads its own OCR model).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
def verify(out_dir: Path, private_dir, engine, no_pixels, recipe_file, in_dir, workers, no_progress) -> None:
    """An independent leak scan of OUT_DIR: exit 0 clean, 1 findings (listed by file and check), 2 usage error."""
    from deidcli.verify.scan import summary_lines, verify_release
    from deidcli.verify.sources import SourceError

    try:
        result = verify_release(out_dir, private_dir, engine=engine, pixels=not no_pixels, workers=workers,
                                progress=not no_progress and sys.stderr.isatty(), recipe=recipe_file, in_dir=in_dir)
    except SourceError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    for line in summary_lines(result):
        click.echo(line)
    sys.exit(result.exit_code)


@main.command("report")
@click.argument("out_dir", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--private-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="The run's private folder (default: OUT_DIR.private); the report is written there.")
@click.option("--in-dir", type=click.Path(exists=True, file_okay=False, path_type=Path),
              help="Where the originals are (default: recorded by the run).")
@click.option("--max-pictures", type=click.IntRange(min=0), default=1000, show_default=True,
              help="Thumbnails and header diffs for this many files, the most changed first.")
def report(out_dir: Path, private_dir, in_dir, max_pictures) -> None:
    """Write a self-contained HTML review page (originals beside outputs) to PRIVATE_DIR/report.html."""
    from deidcli.report import write_report
    from deidcli.verify.sources import SourceError

    try:
        path = write_report(out_dir, private_dir, in_dir=in_dir, max_pictures=max_pictures)
    except SourceError as error:
        click.echo(f"Error: {error}", err=True)
        sys.exit(2)
    click.echo(f"Report: {path}")


def console() -> NoReturn:
    """The `deid` executable: `main`, then an exit that skips the interpreter's teardown.

    Why: after a batch the parent holds pydicom's dictionaries, the coding table and the OCR engine's
    modules, and a normal exit frees them object by object: 0.35-0.45 s of CPU after the last file,
    measured (strace: no system call between the summary line and the first `munmap`), serial time that
    a 12-mammogram batch (~6 s) pays in full. The exit itself is kept whole: non-daemon threads are
    waited for (the normal exit runs when one is alive), `atexit` handlers run (logging, multiprocessing,
    weakref finalizers) and the standard streams are flushed; only the freeing of memory the system
    reclaims anyway is skipped. Every output was already fsynced and renamed by the command itself.
    """
    try:
        main()
        code: object = 0
    except SystemExit as stop:
        code = stop.code
    if any(thread.is_alive() and not thread.daemon for thread in threading.enumerate()
           if thread is not threading.main_thread()):
        sys.exit(code)
    status = _exit_status(code)
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(Exception):  # a closed pipe (`deid ... | head`) must not change the status
            stream.flush()
    os._exit(status)


def _exit_status(code: object) -> int:
    """The process status `sys.exit(code)` gives: None is 0, an int itself, anything else is printed and 1."""
    if code is None:
        return 0
    if isinstance(code, int):
        return code
    with contextlib.suppress(Exception):
        print(code, file=sys.stderr)
    return 1


if __name__ == "__main__":  # pragma: no cover
    console()
