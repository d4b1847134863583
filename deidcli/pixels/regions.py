"""Fixed region rules: devices that always burn patient data into the same place get that place masked.

OCR misses text (low contrast, odd fonts); a rule for a known device layout does not. Rules are JSON:

    {
      "rules": [
        {
          "name": "philips-epiq-1024x768",             # required, unique, used in the audit
          "match": {                                    # required, at least one criterion, all must hold
            "Manufacturer": "Philips Medical Systems",  # exact string (surrounding spaces ignored)
            "ManufacturerModelName": {"regex": "^EPIQ"},# or a regex, matched with re.search
            "Rows": 768,                                # integers compare as integers
            "Columns": 1024
          },
          "rectangles": [[0, 0, 1024, 24]],             # required: [x0, y0, x1, y1], half-open pixels
          "frames": [0, 1]                              # optional: frame indices; absent = every frame
        }
      ]
    }

Criteria may use Manufacturer, ManufacturerModelName, Modality, Rows, Columns, SOPClassUID. An attribute that
is missing from the dataset never matches. `match_regions` returns the rectangles of every matching rule.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydicom.dataset import Dataset

from deidcli.errors import UsageError
from deidcli.geometry import Rect

MATCHABLE = ("Manufacturer", "ManufacturerModelName", "Modality", "Rows", "Columns", "SOPClassUID")

Criterion = str | int | re.Pattern[str]


@dataclass
class RegionRule:
    """One device layout: criteria on the dataset and the rectangles to blank."""

    name: str
    criteria: dict[str, Criterion]
    rects: list[Rect]
    frames: list[int] | None = field(default=None)

    def matches(self, source: Dataset) -> bool:
        return all(_criterion_holds(source.get(keyword), want) for keyword, want in self.criteria.items())


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
    names = [rule.name for rule in rules]
    duplicates = sorted({name for name in names if names.count(name) > 1})
    if duplicates:
        raise UsageError(f"region rules {path}: duplicate rule names {duplicates}")
    return rules


def match_regions(source: Dataset, rules: list[RegionRule], frame: int | None = None) -> list[Rect]:
    """Rectangles of every rule matching `source`; with `frame`, only rules that apply to that frame."""
    rects: list[Rect] = []
    for rule in rules:
        if frame is not None and rule.frames is not None and frame not in rule.frames:
            continue
        if rule.matches(source):
            rects.extend(rule.rects)
    return rects


def matching_rules(source: Dataset, rules: list[RegionRule]) -> list[RegionRule]:
    """The rules that match (for the audit: which device layout was applied)."""
    return [rule for rule in rules if rule.matches(source)]


def _criterion_holds(value: Any, want: Criterion) -> bool:
    """`value` is the dataset's value for the keyword (None when absent, which never matches)."""
    if value is None or value == "":
        return False
    if isinstance(want, re.Pattern):
        return want.search(str(value)) is not None
    if isinstance(want, int):
        try:
            return int(value) == want
        except (TypeError, ValueError):
            return False
    return str(value).strip() == want.strip()


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


def _parse_criterion(where: str, keyword: str, want: Any) -> Criterion:
    if isinstance(want, bool):
        raise UsageError(f"{where}: {keyword} must be a string, an integer or {{\"regex\": ...}}")
    if isinstance(want, int | str):
        return want
    if isinstance(want, dict) and set(want) == {"regex"} and isinstance(want["regex"], str):
        try:
            return re.compile(want["regex"])
        except re.error as exc:
            raise UsageError(f"{where}: {keyword} regex is invalid ({exc})") from exc
    raise UsageError(f'{where}: {keyword} must be a string, an integer or {{"regex": ...}}')


def _parse_rectangles(where: str, rectangles: Any) -> list[Rect]:
    if not isinstance(rectangles, list) or not rectangles:
        raise UsageError(f'{where}: "rectangles" must be a non-empty list of [x0, y0, x1, y1]')
    rects = []
    for item in rectangles:
        valid = isinstance(item, list) and len(item) == 4 and all(type(v) is int for v in item)
        if not valid or item[0] < 0 or item[1] < 0 or item[2] <= item[0] or item[3] <= item[1]:
            raise UsageError(f"{where}: bad rectangle {item!r} (need integers 0 <= x0 < x1, 0 <= y0 < y1)")
        rects.append(Rect(*item))
    return rects


def _parse_frames(where: str, frames: Any) -> list[int] | None:
    if frames is None:
        return None
    if not isinstance(frames, list) or not all(type(v) is int and v >= 0 for v in frames):
        raise UsageError(f'{where}: "frames" must be a list of frame indices (0-based)')
    return frames
