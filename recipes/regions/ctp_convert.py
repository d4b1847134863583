"""Convert CTP's DicomPixelAnonymizer library into our region rules (recipes/regions/ctp-devices.json).

CTP (the RSNA Clinical Trial Processor, github.com/johnperry/CTP) keeps a community library of the places
where known devices burn patient data into their images: each signature is a condition on header
attributes followed by rectangles `(x, y, width, height)`. The rectangles and the device values are facts
about those devices; this script (our own code) turns them into our JSON format, so that a run masks a
known device's header band even when OCR misses it. Run it once, by hand, on a copy of the library:

    python recipes/regions/ctp_convert.py DicomPixelAnonymizer.script --commit SHA \
        > recipes/regions/ctp-devices.json

How CTP's conditions are mapped, faithfully or not at all:
- `*` (and) becomes one rule's criteria; `+` (or) becomes one rule per alternative (same rectangles):
  the union of the alternatives' matches is exactly the condition's.
- `equals("x")` is an exact string (an integer for Rows / Columns); `equalsIgnoreCase`, `contains`,
  `startsWith`, `endsWith` and their `IgnoreCase` forms become {"contains": ..., "ignore_case": ...} etc.;
  `matches("re")` (Java's whole-string match) becomes an anchored regex.
- Attributes are named by keyword or `[gggg,eeee]` tag (looked up in pydicom's dictionary).
- A signature we cannot express is reported on stderr and left out, never approximated by a broader rule:
  `!` (not), the numeric comparisons, attributes outside our MATCHABLE list (e.g. overlay group 6000),
  two different tests of one attribute in one alternative, a signature without rectangles.
- CTP blanks rows y..y+h and columns x..x+w inclusive, so `(x, y, w, h)` becomes the half-open
  `[x, y, x + w + 1, y + h + 1]`; rectangles are clipped to the frame when applied.
- CTP applies only the first signature that matches; we apply every matching rule (the masks add up),
  so a later, more specific signature (a taller band for one protocol) is not shadowed by an earlier one.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path

from pydicom.datadict import keyword_for_tag

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))
from deidcli.pixels.regions import MATCHABLE  # noqa: E402

#: CTP method -> (our operator, ignore case); None marks methods we cannot express.
METHODS: dict[str, tuple[str, bool] | None] = {
    "equals": ("equals", False),
    "equalsIgnoreCase": ("equals", True),
    "contains": ("contains", False),
    "containsIgnoreCase": ("contains", True),
    "startsWith": ("startswith", False),
    "startsWithIgnoreCase": ("startswith", True),
    "endsWith": ("endswith", False),
    "endsWithIgnoreCase": ("endswith", True),
    "matches": ("regex", False),
    "isLessThan": None,
    "isGreaterThan": None,
}
INTEGER_ATTRIBUTES = ("Rows", "Columns")

_OPERAND = re.compile(
    r'(\[[0-9A-Fa-f]{4}\s*,\s*[0-9A-Fa-f]{4}\]|[A-Za-z][A-Za-z0-9]*)\s*\.\s*([A-Za-z]+)\s*\(\s*"([^"]*)"\s*\)'
)
_RECTANGLE = re.compile(r"\(\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*,\s*(-?\d+)\s*\)")
_CONDITION = re.compile(r"\{([^}]*)\}")


class Unsupported(Exception):
    """A signature our rule format cannot express exactly."""


@dataclass(frozen=True)
class Atom:
    keyword: str
    method: str
    text: str


@dataclass
class Signature:
    section: str
    number: int
    condition: str
    rectangles: list[tuple[int, int, int, int]]


# -- reading the library ------------------------------------------------------------------------------------
def signatures(text: str) -> list[Signature]:
    """Every `{ condition }` with the rectangles written after it, and the section it sits in."""
    found = []
    blocks = list(_CONDITION.finditer(text))
    for index, block in enumerate(blocks):
        end = blocks[index + 1].start() if index + 1 < len(blocks) else len(text)
        rects = [tuple(int(v) for v in m.groups()) for m in _RECTANGLE.finditer(text[block.end():end])]
        found.append(Signature(section_at(text, block.start()), index + 1, block.group(1), rects))  # type: ignore[arg-type]
    return found


def section_at(text: str, position: int) -> str:
    """The title of the last `****` banner before `position` (CT, US, ...), as a slug."""
    title = "other"
    lines = text[:position].splitlines()
    for i in range(1, len(lines) - 1):
        if _banner(lines[i - 1]) and _banner(lines[i + 1]) and lines[i].strip():
            title = lines[i].strip()
    return slug(title) or "other"


def _banner(line: str) -> bool:
    return bool(line.strip()) and set(line.strip()) == {"*"}


# -- the condition language: operands, ! * + and parentheses (precedence ! > * > +) ------------------------
def tokens(condition: str) -> list[object]:
    out: list[object] = []
    position = 0
    condition = re.sub(r"//[^\n]*", "", condition)
    while position < len(condition):
        char = condition[position]
        if char.isspace():
            position += 1
        elif char in "*+!()":
            out.append(char)
            position += 1
        else:
            operand = _OPERAND.match(condition, position)
            if not operand:
                raise Unsupported(f"cannot read {condition[position:position + 30]!r}")
            out.append(Atom(*operand.groups()))
            position = operand.end()
    return out


def parse(condition: str) -> list[list[Atom]]:
    """The condition in disjunctive normal form: a list of alternatives, each a list of atoms (and)."""
    items = tokens(condition)
    position = 0

    def peek() -> object:
        return items[position] if position < len(items) else None

    def take() -> object:
        nonlocal position
        position += 1
        return items[position - 1]

    def alternatives() -> list[list[Atom]]:
        result = conjunction()
        while peek() == "+":
            take()
            result = result + conjunction()
        return result

    def conjunction() -> list[list[Atom]]:
        result = factor()
        while peek() == "*":
            take()
            right = factor()
            result = [left + other for left in result for other in right]
        return result

    def factor() -> list[list[Atom]]:
        item = take() if peek() is not None else None
        if item == "!":
            raise Unsupported("'!' (not) cannot be expressed")
        if item == "(":
            inner = alternatives()
            if peek() != ")":
                raise Unsupported("unbalanced parentheses")
            take()
            return inner
        if isinstance(item, Atom):
            return [[item]]
        raise Unsupported(f"unexpected {item!r}")

    result = alternatives()
    if peek() is not None:
        raise Unsupported(f"unexpected {peek()!r}")
    return result


# -- to our rules ---------------------------------------------------------------------------------------------
def keyword_of(identifier: str) -> str:
    if identifier.startswith("["):
        group, element = (int(part, 16) for part in identifier.strip("[]").split(","))
        keyword = keyword_for_tag((group << 16) | element)
        if not keyword:
            raise Unsupported(f"{identifier} is not a known attribute")
        identifier = keyword
    if identifier not in MATCHABLE:
        raise Unsupported(f"{identifier} cannot be matched by our rules")
    return identifier


def criterion(atom: Atom) -> tuple[str, object]:
    keyword = keyword_of(atom.keyword)
    if atom.method not in METHODS:
        raise Unsupported(f"unknown method {atom.method}")
    mapped = METHODS[atom.method]
    if mapped is None:
        raise Unsupported(f"{atom.method} cannot be expressed")
    if not atom.text:
        raise Unsupported("an empty value to compare with")
    operator, ignore_case = mapped
    if operator == "regex":
        pattern = r"\A(?:" + atom.text + r")\Z"
        try:
            re.compile(pattern)
        except re.error as exc:
            raise Unsupported(f"regex {atom.text!r} is not valid in Python ({exc})") from exc
        return keyword, {"regex": pattern}
    if operator == "equals" and not ignore_case:
        if keyword in INTEGER_ATTRIBUTES and atom.text.isdigit():
            return keyword, int(atom.text)
        if atom.text == atom.text.strip():
            return keyword, atom.text
    test: dict[str, object] = {operator: atom.text}
    if ignore_case:
        test["ignore_case"] = True
    return keyword, test


def to_rules(signature: Signature) -> list[dict]:
    """Our rules for one signature (one per alternative); raises Unsupported."""
    if not signature.rectangles:
        raise Unsupported("no rectangles")
    rectangles = []
    for x, y, w, h in signature.rectangles:
        if min(x, y, w, h) < 0:
            raise Unsupported(f"negative rectangle {(x, y, w, h)}")
        rectangles.append([x, y, x + w + 1, y + h + 1])
    alternatives = parse(signature.condition)
    rules = []
    for index, atoms in enumerate(alternatives):
        match: dict[str, object] = {}
        for atom in atoms:
            keyword, want = criterion(atom)
            if keyword in match and match[keyword] != want:
                raise Unsupported(f"two different tests of {keyword} in one alternative")
            match[keyword] = want
        comment = f"CTP signature #{signature.number} ({signature.section})"
        if len(alternatives) > 1:
            comment += f", alternative {index + 1} of {len(alternatives)}"
        rules.append({"name": "", "comment": comment, "match": match, "rectangles": rectangles})
    return rules


def rule_name(section: str, match: dict[str, object]) -> str:
    """A readable name from the rule's own criteria: section, device values, size."""
    parts = [f"ctp-{section}"]
    for keyword, want in match.items():
        if keyword not in (*INTEGER_ATTRIBUTES, "Modality", "BurnedInAnnotation"):
            parts.append(slug(_literal(want)))
    rows, columns = match.get("Rows"), match.get("Columns")
    if isinstance(rows, int) and isinstance(columns, int):
        parts.append(f"{columns}x{rows}")
    elif isinstance(rows, int) or isinstance(columns, int):
        parts.append(f"rows{rows}" if isinstance(rows, int) else f"columns{columns}")
    return "-".join(part for part in parts if part)


def _literal(want: object) -> str:
    """The text a criterion compares with (a regex without its anchors)."""
    if isinstance(want, str):
        return want
    if isinstance(want, dict):
        if "regex" in want:
            return str(want["regex"]).removeprefix(r"\A(?:").removesuffix(r")\Z")
        return next((str(v) for k, v in want.items() if k != "ignore_case"), "")
    return ""


def slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")


def convert(text: str, source: str) -> tuple[dict, list[str]]:
    """Our rules document and the list of signatures left out (with why)."""
    rules: list[dict] = []
    skipped: list[str] = []
    for signature in signatures(text):
        try:
            converted = to_rules(signature)
        except Unsupported as exc:
            skipped.append(f"signature #{signature.number} ({signature.section}): {exc}")
            continue
        for rule in converted:
            base = rule_name(signature.section, rule["match"])
            name, n = base, 2
            while any(existing["name"] == name for existing in rules):
                name, n = f"{base}-{n}", n + 1
            rule["name"] = name
            rules.append(rule)
    document = {
        "source": source,
        "conversion": "recipes/regions/ctp_convert.py: CTP (x, y, w, h) -> [x, y, x+w+1, y+h+1] (CTP blanks both "
                      "edges); '+' split into one rule per alternative; every matching rule applies; "
                      "signatures we cannot express exactly are left out: " + ("; ".join(skipped) or "none"),
        "rules": rules,
    }
    return document, skipped


def render(document: dict) -> str:
    """JSON with one line per rule field (reviewable diffs, rectangles on one line)."""
    lines = ["{"]
    for key in ("source", "conversion"):
        lines.append(f"  {json.dumps(key)}: {json.dumps(document[key])},")
    lines.append('  "rules": [')
    for index, rule in enumerate(document["rules"]):
        fields = [f"      {json.dumps(key)}: {json.dumps(value)}" for key, value in rule.items()]
        lines.append("    {\n" + ",\n".join(fields) + "\n    }" + ("," if index + 1 < len(document["rules"]) else ""))
    lines += ["  ]", "}"]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("script", type=Path, help="a copy of CTP's DicomPixelAnonymizer.script")
    parser.add_argument("--commit", required=True, help="the CTP commit the copy comes from")
    args = parser.parse_args()
    source = (f"CTP (RSNA Clinical Trial Processor) DicomPixelAnonymizer library: github.com/johnperry/CTP "
              f"source/files/scripts/DicomPixelAnonymizer.script at commit {args.commit}; device values and "
              f"rectangles only, converted by our own code")
    document, skipped = convert(args.script.read_text(encoding="utf-8"), source)
    for line in skipped:
        print(f"left out: {line}", file=sys.stderr)
    print(f"{len(document['rules'])} rules, {len(skipped)} signatures left out", file=sys.stderr)
    sys.stdout.write(render(document))
    return 0


if __name__ == "__main__":
    sys.exit(main())
