"""Every exception deidcli raises, in one hierarchy users can catch.

`DeidError` is the root. Errors that concern one input file carry a `reason` code from
`deidcli.reasons` so the batch can quarantine the file with an audit row instead of stopping.
"""

from __future__ import annotations

import errno


class DeidError(Exception):
    """Root of every error raised by deidcli."""


class UsageError(DeidError):
    """The caller asked for something inconsistent (bad option, OUT_DIR inside IN_DIR, ...)."""


class OptionError(UsageError):
    """A usage error naming run options: the message is a template with {option_name} placeholders.

    Why a template: the same error reaches command line users, who type `--region-rules`, and Python users,
    who pass `region_rules=`. `str(error)` is the Python spelling; `render("cli")` the command line one.
    Values (paths, user input) go in `values`, never in the template, so braces in them are harmless.
    """

    def __init__(self, template: str, **values: object) -> None:
        self.template = template
        self.values = values
        super().__init__(self.render("api"))

    def render(self, surface: str) -> str:
        from deidcli.options import render_template  # the option table; imported late (it imports us)

        return render_template(self.template, surface, **self.values)


class RecipeError(DeidError):
    """A recipe could not be loaded or is invalid. `problems` lists what `check-recipe` found."""

    def __init__(self, message: str, problems: list | None = None) -> None:
        super().__init__(message)
        self.problems = problems or []


class KeyFileError(DeidError):
    """The pseudonymisation key is missing, unreadable or too short."""


class FileRejected(DeidError):
    """One input file cannot be de-identified safely; it is quarantined with `reason`.

    `detail` must never contain PHI: it goes to the audit table inside OUT_DIR.
    """

    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


class PixelError(FileRejected):
    """Pixel data could not be decoded, masked or encoded."""


class OcrError(FileRejected):
    """Text detection failed or was not trustworthy; the file must not be written."""


class OutputConflict(OptionError):
    """OUT_DIR holds work from another recipe or key, or files that deid run did not write."""


class KeyMismatch(OutputConflict):
    """The key given (or found) is not the key OUT_DIR was written with: pseudonyms would not link."""


#: errno values that say the output storage (OUT_DIR, the private folder) failed, not the input file: the batch
#: stops (exit 4) instead of quarantining file after file as `write_failed`.
STORAGE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM,
                            errno.EIO})


def storage_error(error: BaseException) -> OSError | None:
    """The OSError with a storage errno in `error`'s cause chain, or None.

    Why the chain: pydicom re-raises a write error as a new OSError without its errno ("With tag ... got
    exception: [Errno 28] ..."), so the full disk would read as a bad file.
    """
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in STORAGE_ERRNOS:
            return current
        current = current.__cause__ or current.__context__
    return None
