"""Authorised words: burned-in text that may stay visible because it is not PHI.

Mammograms carry view and laterality labels ("L CC", "RMLO") that readers and AI models need.
A detected box is spared only when its WHOLE recognised text is one entry of the list (compared
case-insensitively with all whitespace removed, so "L CC" == "LCC" == "l cc") and the engine is
confident enough: a label glued to anything else ("L CC SMITH") is masked, as is a label read
with low confidence. Everything else on the image is masked: the list is an allow-list.
"""

from __future__ import annotations

import re
from importlib import resources
from pathlib import Path

DEFAULT_THRESHOLD = 0.8
_SPACE = re.compile(r"\s+")


def normalise(text: str) -> str:
    """Case-folded with every whitespace run removed: the form entries are compared in."""
    return _SPACE.sub("", text).casefold()


class AuthorisedWords:
    """An allow-list of texts that may remain burned in."""

    def __init__(
        self, entries: list[str] | tuple[str, ...] | set[str], threshold: float = DEFAULT_THRESHOLD
    ) -> None:
        self.entries = frozenset(n for n in (normalise(e) for e in entries) if n)
        #: characters of the longest entry as printed (spaces count: they widen the text box)
        self.longest = max((len(" ".join(e.split())) for e in entries if e.strip()), default=0)
        self.threshold = threshold

    def __len__(self) -> int:
        return len(self.entries)

    def __contains__(self, text: object) -> bool:
        return isinstance(text, str) and normalise(text) in self.entries

    def spares(self, text: str, confidence: float) -> bool:
        """True only if the whole text is an entry and it was read with confidence >= threshold."""
        return confidence >= self.threshold and normalise(text) in self.entries


def parse_lines(lines: list[str]) -> list[str]:
    """Entries from a list file: one per line, '#' starts a comment, blank lines ignored."""
    entries = []
    for line in lines:
        entry = line.split("#", 1)[0].strip()
        if entry:
            entries.append(entry)
    return entries


def load_authorised_words(path: str | Path, threshold: float = DEFAULT_THRESHOLD) -> AuthorisedWords:
    """An AuthorisedWords list read from a UTF-8 text file (one entry per line, '#' comments)."""
    text = Path(path).read_text(encoding="utf-8")
    return AuthorisedWords(parse_lines(text.splitlines()), threshold)


def builtin_mammography_words(threshold: float = DEFAULT_THRESHOLD) -> AuthorisedWords:
    """The shipped mammography view/laterality list (deidcli/data/authorised-mammography.txt)."""
    text = resources.files("deidcli").joinpath("data/authorised-mammography.txt").read_text(encoding="utf-8")
    return AuthorisedWords(parse_lines(text.splitlines()), threshold)


BUILTIN_MAMMOGRAPHY_WORDS = builtin_mammography_words()

#: Built-in lists a recipe can name in its `authorised_words` setting.
BUILTIN_LISTS = {"mammography": "data/authorised-mammography.txt"}


def combined_authorised_words(names: list[str], path: str | Path | None = None,
                              threshold: float = DEFAULT_THRESHOLD) -> AuthorisedWords | None:
    """The allow-list for a run: built-in lists named by the recipe plus the user's file; None when empty.

    None (not an empty list) tells the scanner that nothing may be spared, which lets it skip reading
    boxes whose text could never be authorised anyway.
    """
    entries: list[str] = []
    for name in names:
        if name not in BUILTIN_LISTS:
            raise ValueError(f"unknown authorised word list {name!r}; known: {', '.join(BUILTIN_LISTS)}")
        text = resources.files("deidcli").joinpath(BUILTIN_LISTS[name]).read_text(encoding="utf-8")
        entries.extend(parse_lines(text.splitlines()))
    if path is not None:
        entries.extend(parse_lines(Path(path).read_text(encoding="utf-8").splitlines()))
    return AuthorisedWords(entries, threshold) if entries else None
