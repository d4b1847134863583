"""The recipe data model: actions, tag patterns, rules, and the lookup the attribute engine uses.

A recipe says, for each attribute, one of four actions (the kskit/deidcm vocabulary our users know).
Everything the recipe does not name is removed (zero trust): `Recipe.action_for` returns `None` for an
unnamed tag and the engine treats `None` as RETIRER.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from enum import StrEnum
from functools import cached_property


class Action(StrEnum):
    CONSERVER = "CONSERVER"  # keep as is
    RETIRER = "RETIRER"  # remove the element
    EFFACER = "EFFACER"  # keep the element, zero length
    PSEUDONYMISER = "PSEUDONYMISER"  # keyed, consistent replacement valid for the VR


#: Higher is stricter. Along a sequence path the strictest action wins (a kept tag in a removed
#: sequence is gone), unless a specific rule names the leaf inside its parent.
STRICTNESS: dict[Action, int] = {
    Action.CONSERVER: 0,
    Action.PSEUDONYMISER: 1,
    Action.EFFACER: 2,
    Action.RETIRER: 3,
}


def strictest(first: Action, second: Action) -> Action:
    return first if STRICTNESS[first] >= STRICTNESS[second] else second


#: CID 7050 De-identification Method: code -> meaning.
CID_7050 = {
    "113100": "Basic Application Confidentiality Profile",
    "113101": "Clean Pixel Data Option",
    "113102": "Clean Recognizable Visual Features Option",
    "113103": "Clean Graphics Option",
    "113104": "Clean Structured Content Option",
    "113105": "Clean Descriptors Option",
    "113106": "Retain Longitudinal Temporal Information Full Dates Option",
    "113107": "Retain Longitudinal Temporal Information Modified Dates Option",
    "113108": "Retain Patient Characteristics Option",
    "113109": "Retain Device Identity Option",
    "113110": "Retain UIDs Option",
    "113111": "Retain Safe Private Option",
    "113112": "Retain Institution Identity Option",
}


_HEX8 = re.compile(r"^[0-9a-fx]{8}$")


@dataclass(frozen=True)
class TagPattern:
    """A tag, or a repeating-group pattern such as 60xx3000 / 50xxxxxx (x = any hex digit).

    `value` has the wildcard nibbles zeroed; `mask` has 0xF where a nibble must match.
    For private rules (`0029xx10`) the `xx` is the private block, resolved through the creator.
    """

    value: int
    mask: int
    text: str

    @property
    def is_exact(self) -> bool:
        return self.mask == 0xFFFFFFFF

    @property
    def group(self) -> int:
        return self.value >> 16

    @property
    def is_private(self) -> bool:
        return self.mask >> 16 == 0xFFFF and self.group % 2 == 1

    def matches(self, tag: int) -> bool:
        return tag & self.mask == self.value

    def __str__(self) -> str:
        return self.text


def parse_tag(text: str) -> TagPattern:
    """Parse `0xGGGGEEEE`, `GGGGEEEE`, `(gggg,eeee)` or a pydicom keyword, case-insensitively.

    Raises ValueError with a human message when the text is not a tag.
    """
    original = text
    cleaned = text.strip()
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    elif cleaned.startswith("(") and cleaned.endswith(")") and "," in cleaned:
        group, _, element = cleaned[1:-1].partition(",")
        cleaned = group.strip().zfill(4) + element.strip().zfill(4)
    lowered = cleaned.lower()
    if _HEX8.match(lowered):
        value = 0
        mask = 0
        for nibble in lowered:
            value <<= 4
            mask <<= 4
            if nibble != "x":
                value |= int(nibble, 16)
                mask |= 0xF
        return TagPattern(value, mask, "0x" + lowered)
    from pydicom.datadict import tag_for_keyword

    tag = tag_for_keyword(cleaned)
    if tag is not None:
        return TagPattern(tag, 0xFFFFFFFF, f"0x{tag:08x}")
    raise ValueError(f"{original!r} is not a tag (expected 0xGGGGEEEE, (gggg,eeee) or a DICOM keyword)")


@dataclass(frozen=True)
class Rule:
    """One line of a recipe. `where` locates it in the source file for messages."""

    pattern: TagPattern
    action: Action
    keyword: str = ""
    vr: str = ""
    creator: str | None = None  # private rules: the block's private creator must equal this
    parent: TagPattern | None = None  # specific rules: applies only directly inside this sequence
    where: str = ""


@dataclass
class Recipe:
    """A loaded recipe, indexed for fast lookup by the attribute engine."""

    name: str
    rules: list[Rule]
    specific_rules: list[Rule] = field(default_factory=list)
    version: str = ""
    description: str = ""
    #: CID 7050 codes this recipe implements (113100 basic profile, options ...).
    method_codes: list[str] = field(default_factory=list)
    #: Range of the keyed per-patient date shift, in days (inclusive).
    date_shift_days: tuple[int, int] = (-3650, -365)
    #: Names of built-in word lists or files whose text OCR may leave visible.
    authorised_words: list[str] = field(default_factory=list)
    #: The organisation UID root the recipe asks for; a run's own org_root wins over it.
    org_root: str | None = None
    source_text: str = ""

    def __post_init__(self) -> None:
        #: (tag, private creator, parent sequence, floor action) -> action: filled by the attribute engine.
        self.decisions: dict[tuple, Action] = {}
        self._exact: dict[int, Rule] = {}
        self._patterns: list[Rule] = []
        self._private: dict[tuple[int, str, int], Rule] = {}
        self._specific: dict[tuple[int, int], Rule] = {}
        for rule in self.rules:
            if rule.creator is not None:
                key = (rule.pattern.group, rule.creator.strip().lower(), rule.pattern.value & 0xFF)
                self._private[key] = rule
            elif rule.pattern.is_exact:
                self._exact[rule.pattern.value] = rule
            else:
                self._patterns.append(rule)
        for rule in self.specific_rules:
            if rule.parent is not None and rule.parent.is_exact and rule.pattern.is_exact:
                self._specific[(rule.parent.value, rule.pattern.value)] = rule

    @cached_property
    def hash(self) -> str:
        """A short digest of the rules and settings: recorded in outputs and used by resume."""
        canonical = json.dumps(self.to_json(), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(canonical.encode()).hexdigest()[:16]

    def general_rule(self, tag: int, creator: str | None = None) -> Rule | None:
        """The general rule for `tag` (private tags only match rules naming their creator)."""
        if tag >> 16 & 1:  # odd group: private
            if creator is None:
                return None
            return self._private.get((tag >> 16, creator.strip().lower(), tag & 0xFF))
        rule = self._exact.get(tag)
        if rule is not None:
            return rule
        for candidate in self._patterns:
            if candidate.pattern.matches(tag):
                return candidate
        return None

    def specific_rule(self, tag: int, parent: int | None) -> Rule | None:
        if parent is None or not self._specific:
            return None
        return self._specific.get((parent, tag))

    def keeps_private_creator(self, group: int, creator: str) -> bool:
        """Whether any rule keeps something in this private block (so its creator element stays)."""
        lowered = creator.strip().lower()
        return any(g == group and c == lowered and r.action != Action.RETIRER for (g, c, _), r in self._private.items())

    def to_json(self) -> dict:
        """The recipe in its file format (general_rules/specific_rules plus our settings)."""
        general: dict[str, list] = {}
        for rule in self.rules:
            entry: list = [rule.keyword, rule.vr, rule.action.value]
            if rule.creator is not None:
                entry.append({"creator": rule.creator})
            key = rule.pattern.text
            if rule.creator is not None:
                key = f"0x{rule.pattern.group:04x}xx{rule.pattern.value & 0xFF:02x}"
            general[key] = entry
        specific: dict[str, list[dict]] = {}
        for rule in self.specific_rules:
            assert rule.parent is not None
            specific.setdefault(rule.pattern.text, []).append({"sequence": rule.parent.text, "rule": rule.action.value})
        document = {
            "name": self.name,
            "version": self.version,
            "description": self.description,
            "deidentification_method_codes": list(self.method_codes),
            "date_shift_days": list(self.date_shift_days),
            "authorised_words": list(self.authorised_words),
            "general_rules": general,
            "specific_rules": specific,
        }
        if self.org_root is not None:  # only when set: recipes without one keep their hash (and resume)
            document["org_root"] = self.org_root
        return document
