"""Fixed region rules: devices that always burn patient data into the same place get that place masked.

OCR misses text (low contrast, odd fonts); a rule for a known device layout does not. Rules are JSON:

    {
      "rules": [
        {
          "name": "philips-epiq-1024x768",             # required, unique, used in the audit
          "match": {                                    # required, at least one criterion, all must hold
            "Manufacturer": "Philips Medical Systems",  # exact string (surrounding spaces ignored)
            "ManufacturerModelName": {"regex": "^EPIQ"},# or a regex, matched with re.search
            "SeriesDescription": {"contains": "dose", "ignore_case": true},  # or contains / startswith /
            "Rows": 768,                                # endswith / equals; integers compare as integers
            "Columns": 1024
          },
          "rectangles": [[0, 0, 1024, 24]],             # required: [x0, y0, x1, y1], half-open pixels
          "frames": [0, 1]                              # optional: frame indices; absent = every frame
        }
      ]
    }

Criteria may use the attributes of MATCHABLE. A multi-valued attribute is compared as its values joined by
a backslash (`ORIGINAL\\SECONDARY`), as CTP does. An attribute that is missing from the dataset never
matches. `match_regions` returns the rectangles of every matching rule (all of them, not the first: the
masks add up). Header values come from strangers: they are only ever compared with the rule's text, never
compiled as a pattern, and a rule's rectangle is clipped to the frame when it is applied.

`builtin_region_rules()` loads the rules bundled with deidcli (`recipes/regions/ctp-devices.json`, the
device layouts of CTP's DicomPixelAnonymizer library), which a run applies unless `builtin_regions` is off.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from pydicom.datadict import tag_for_keyword
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue

from deidcli.elements import value_at
from deidcli.errors import UsageError
from deidcli.geometry import Rect

#: Attributes a rule may test. ImplementationVersionName is read from the file meta information.
MATCHABLE = (
    "Manufacturer", "ManufacturerModelName", "Modality", "Rows", "Columns", "SOPClassUID",
    "SeriesDescription", "ImageType", "BurnedInAnnotation", "ProtocolName", "CommentsOnRadiationDose",
    "WindowWidth", "CodeMeaning", "ImplementationVersionName",
)
_FILE_META = frozenset({"ImplementationVersionName"})
_MATCHABLE_TAGS = {keyword: tag_for_keyword(keyword) for keyword in MATCHABLE}
#: Text comparisons a rule may make besides exact strings, integers and regexes.
TEXT_OPERATORS = ("equals", "contains", "startswith", "endswith")
#: Where the built-in rules live inside the installed `deidcli.recipes` package.
BUILTIN_RULES = "regions/ctp-devices.json"
#: No frame is larger (Rows and Columns are 16-bit): a bigger coordinate is a typo, refused when loading.
MAX_COORDINATE = 65536
#: A regex from a rules file only ever sees this many characters of a value: the attributes matched hold at
#: most 64 characters in a valid file, and a hostile 10 MB value must not make a pattern backtrack for minutes.
REGEX_VALUE_LIMIT = 1024


@dataclass(frozen=True)
class TextTest:
    """`contains` / `startswith` / `endswith` / `equals` on the value's text, optionally ignoring case."""

    operator: str
    text: str
    ignore_case: bool = False

    def holds(self, value: str) -> bool:
        want = self.text.lower() if self.ignore_case else self.text
        have = value.lower() if self.ignore_case else value
        if self.operator == "contains":
            return want in have
        if self.operator == "startswith":
            return have.startswith(want)
        if self.operator == "endswith":
            return have.endswith(want)
        return have == want


Criterion = str | int | re.Pattern[str] | TextTest


@dataclass
class RegionRule:
    """One device layout: criteria on the dataset and the rectangles to blank."""

    name: str
    criteria: dict[str, Criterion]
    rects: list[Rect]
    frames: list[int] | None = field(default=None)
    #: Bundled with deidcli (not the user's): adds masks, but never counts as checking a file without OCR.
    builtin: bool = False

    def applies_to(self, frame: int | None) -> bool:
        """Whether the rectangles are for this frame (None: any frame; `frames` absent: every frame)."""
        return frame is None or self.frames is None or frame in self.frames

    def matches(self, source: Dataset, seen: dict[str, str | None] | None = None) -> bool:
        """`seen` carries the texts already looked up in `source` across rules (52 built-in rules ask for the
        same few attributes; a pydicom look-up per criterion was 2 ms per file on the header-only path)."""
        seen = {} if seen is None else seen
        for keyword, want in self.criteria.items():
            if keyword not in seen:
                seen[keyword] = _text_or_none(_value_of(source, keyword))
            if not _criterion_holds(seen[keyword], want):
                return False
        return True


def load_region_rules(path: str | Path) -> list[RegionRule]:
    """Read and validate a rules file; every problem is a UsageError naming the file and the rule."""
    path = Path(path)
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise UsageError(f"region rules {path}: cannot read ({exc.strerror or exc})") from exc
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise UsageError(f"region rules {path}: not valid JSON ({exc})") from exc
    if not isinstance(document, dict) or not isinstance(document.get("rules"), list):
        raise UsageError(f'region rules {path}: expected an object with a "rules" list')
    rules = [_parse_rule(path, position, raw) for position, raw in enumerate(document["rules"])]
    _refuse_duplicate_names(f"region rules {path}", rules)
    return rules


def builtin_region_rules() -> list[RegionRule]:
    """The rules bundled with deidcli (`BUILTIN_RULES`), validated like any rules file."""
    with resources.as_file(resources.files("deidcli.recipes").joinpath(BUILTIN_RULES)) as path:
        rules = load_region_rules(path)
    for rule in rules:
        rule.builtin = True
    return rules


def combine_region_rules(builtin: list[RegionRule], given: list[RegionRule]) -> list[RegionRule]:
    """The built-in rules followed by the user's; a user rule may not reuse a built-in name (the audit
    names the rules that matched, and one name must mean one layout)."""
    rules = builtin + given
    _refuse_duplicate_names("region rules", rules, "a built-in rule has the same name")
    return rules


def match_regions(source: Dataset, rules: list[RegionRule], frame: int | None = None) -> list[Rect]:
    """Rectangles of every rule matching `source`; with `frame`, only rules that apply to that frame."""
    return rects_of(matching_rules(source, rules), frame)


def matching_rules(source: Dataset, rules: list[RegionRule]) -> list[RegionRule]:
    """The rules that match (for the audit: which device layout was applied)."""
    seen: dict[str, str | None] = {}
    return [rule for rule in rules if rule.matches(source, seen)]


#: Criteria a `RuleIndex` files a rule under, most selective first: an exact integer or string on one of these.
INDEX_KEYWORDS = ("Rows", "Columns", "Modality", "Manufacturer", "ManufacturerModelName")


class RuleIndex:
    """`matching_rules` for many files against one rule list: each file tests only the rules that can match.

    Why: the 52 built-in rules were each tested against every file of a header-only run (~0.1 ms a file, more
    than the rest of the pixel copy). A rule with an exact integer or string criterion (``"Rows": 768``,
    ``"Modality": "US"``) is filed under that value; a file looks up its own values and tests, in the rules'
    order, the rules filed under them plus the rules without such a criterion. The answer is the linear
    scan's, rule for rule: a rule left out fails the criterion it is filed under (the same comparison as
    `_criterion_holds`)."""

    def __init__(self, rules: list[RegionRule]) -> None:
        self.rules = rules
        self._always: list[int] = []
        self._filed: dict[tuple[str, int | str], list[int]] = {}
        for position, rule in enumerate(rules):
            key = _index_key(rule)
            if key is None:
                self._always.append(position)
            else:
                self._filed.setdefault(key, []).append(position)
        self._keywords = tuple(dict.fromkeys(keyword for keyword, _ in self._filed))

    def matching(self, source: Dataset) -> list[RegionRule]:
        """The rules of the list that match `source`, in the list's order (as `matching_rules`)."""
        seen: dict[str, str | None] = {}
        candidates = list(self._always)
        for keyword in self._keywords:
            text = seen[keyword] = _text_or_none(_value_of(source, keyword))
            if text is None:
                continue
            candidates += self._filed.get((keyword, text), ())
            number = _as_int(text)
            if number is not None:
                candidates += self._filed.get((keyword, number), ())
        candidates.sort()
        rules = self.rules
        return [rules[position] for position in candidates if rules[position].matches(source, seen)]


def _index_key(rule: RegionRule) -> tuple[str, int | str] | None:
    """(keyword, value) for the rule's first exact criterion on INDEX_KEYWORDS, or None (tested on every file)."""
    for keyword in INDEX_KEYWORDS:
        want = rule.criteria.get(keyword)
        if isinstance(want, int) and not isinstance(want, bool):
            return keyword, want
        if isinstance(want, str):
            return keyword, want.strip()
    return None


def _as_int(text: str) -> int | None:
    """`int(text)` as `_criterion_holds` compares an integer criterion, or None."""
    try:
        return int(text)
    except ValueError:
        return None


def rects_of(rules: list[RegionRule], frame: int | None = None) -> list[Rect]:
    """The rectangles of `rules`, in order; with `frame`, only of the rules that apply to that frame."""
    return [rect for rule in rules if rule.applies_to(frame) for rect in rule.rects]


def _refuse_duplicate_names(where: str, rules: list[RegionRule], why: str = "") -> None:
    names = [rule.name for rule in rules]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"{where}: duplicate rule names {duplicates}" + (f" ({why})" if why else ""))


def _value_of(source: Dataset, keyword: str) -> Any:
    """The attribute's value (None when absent or unreadable: a malformed value matches nothing).

    Read by tag through `deidcli.elements` (the value `Dataset.get(keyword)` gives, without its keyword
    look-up and attribute machinery: a file asks for up to a dozen of these)."""
    holder = getattr(source, "file_meta", None) if keyword in _FILE_META else source
    if holder is None:
        return None
    try:
        return value_at(holder, _MATCHABLE_TAGS[keyword])
    except Exception:  # noqa: BLE001 - a hostile value that pydicom cannot convert simply does not match
        return None


def _text_of(value: Any) -> str:
    """The value as CTP compares it: each value without padding, several joined by a backslash."""
    if isinstance(value, MultiValue | list | tuple):
        return "\\".join(_text_of(item) for item in value)
    if isinstance(value, bytes):
        return value.decode("latin-1").strip(" \x00")
    return str(value).strip(" \x00")


def _text_or_none(value: Any) -> str | None:
    """The value's text as rules compare it (`_text_of`), or None when absent or empty (never matches)."""
    if value is None:
        return None
    return _text_of(value) or None


def _criterion_holds(text: str | None, want: Criterion) -> bool:
    """`text` is the dataset's value for the keyword as `_text_or_none` gives it (None never matches)."""
    if text is None:
        return False
    if isinstance(want, TextTest):
        return want.holds(text)
    if isinstance(want, re.Pattern):
        return want.search(text[:REGEX_VALUE_LIMIT]) is not None
    if isinstance(want, int):
        try:
            return int(text) == want
        except ValueError:
            return False
    return text == want.strip()


def _parse_rule(path: Path, position: int, raw: Any) -> RegionRule:
    where = f"region rules {path}: rule #{position}"
    if not isinstance(raw, dict):
        raise UsageError(f"{where}: must be an object")
    unknown = set(raw) - {"name", "match", "rectangles", "frames", "comment"}
    if unknown:
        raise UsageError(f"{where}: unknown keys {sorted(unknown)}")
    name = raw.get("name")
    if not isinstance(name, str) or not name.strip():
        raise UsageError(f'{where}: "name" must be a non-empty string')
    where = f"region rules {path}: rule {name!r}"
    criteria = _parse_match(where, raw.get("match"))
    rects = _parse_rectangles(where, raw.get("rectangles"))
    frames = _parse_frames(where, raw.get("frames"))
    return RegionRule(name=name, criteria=criteria, rects=rects, frames=frames)


def _parse_match(where: str, match: Any) -> dict[str, Criterion]:
    if not isinstance(match, dict) or not match:
        raise UsageError(f'{where}: "match" must be a non-empty object')
    criteria: dict[str, Criterion] = {}
    for keyword, want in match.items():
        if keyword not in MATCHABLE:
            raise UsageError(f"{where}: cannot match on {keyword!r} (allowed: {', '.join(MATCHABLE)})")
        criteria[keyword] = _parse_criterion(where, keyword, want)
    return criteria


_CRITERION_FORMS = ('a string, an integer, {"regex": ...} or {"contains" | "startswith" | "endswith" | '
                    '"equals": TEXT, "ignore_case": true|false}')


def _parse_criterion(where: str, keyword: str, want: Any) -> Criterion:
    if isinstance(want, bool):
        raise UsageError(f"{where}: {keyword} must be {_CRITERION_FORMS}")
    if isinstance(want, int | str):
        if isinstance(want, str) and not want.strip():
            raise UsageError(f"{where}: {keyword} must not be empty (an empty value never matches)")
        return want
    if isinstance(want, dict) and set(want) == {"regex"} and isinstance(want["regex"], str):
        try:
            return re.compile(want["regex"])
        except re.error as exc:
            raise UsageError(f"{where}: {keyword} regex is invalid ({exc})") from exc
    if isinstance(want, dict):
        operators = [key for key in want if key in TEXT_OPERATORS]
        extra = set(want) - set(TEXT_OPERATORS) - {"ignore_case"}
        ignore_case = want.get("ignore_case", False)
        if len(operators) == 1 and not extra and isinstance(ignore_case, bool):
            text = want[operators[0]]
            if isinstance(text, str) and text:
                return TextTest(operators[0], text, ignore_case)
            raise UsageError(f"{where}: {keyword} {operators[0]} must be a non-empty string")
    raise UsageError(f"{where}: {keyword} must be {_CRITERION_FORMS}")


def _parse_rectangles(where: str, rectangles: Any) -> list[Rect]:
    if not isinstance(rectangles, list) or not rectangles:
        raise UsageError(f'{where}: "rectangles" must be a non-empty list of [x0, y0, x1, y1]')
    rects = []
    for item in rectangles:
        valid = isinstance(item, list) and len(item) == 4 and all(type(v) is int for v in item)
        if not valid or item[0] < 0 or item[1] < 0 or item[2] <= item[0] or item[3] <= item[1]:
            raise UsageError(f"{where}: bad rectangle {item!r} (need integers 0 <= x0 < x1, 0 <= y0 < y1)")
        if item[2] > MAX_COORDINATE or item[3] > MAX_COORDINATE:
            raise UsageError(f"{where}: rectangle {item!r} reaches beyond {MAX_COORDINATE} pixels (no frame is that large)")
        rects.append(Rect(*item))
    return rects


def _parse_frames(where: str, frames: Any) -> list[int] | None:
    if frames is None:
        return None
    if not isinstance(frames, list) or not all(type(v) is int and v >= 0 for v in frames):
        raise UsageError(f'{where}: "frames" must be a list of frame indices (0-based)')
    return frames
