"""The recipe JSON read as data: which attributes may appear in an output, and which private creators.

A deliberately small reader of the documented file format (flat `{"0xGGGGEEEE": [keyword, VR, ACTION]}` or
`general_rules` / `specific_rules`), written apart from `deidcli.recipe` so that a mistake in the writer's
reader is not repeated here. It answers one question: may this tag be present at this place?
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from pydicom.datadict import tag_for_keyword

REMOVE = "RETIRER"
KEEP = "CONSERVER"
#: Attributes PS3.15 makes the writer add or set whatever the recipe says (marks of de-identification, the
#: SOP identity every instance needs, the pixel description the pixel stage may rewrite).
WRITER_MARKS = {
    tag_for_keyword(keyword) for keyword in (
        "PatientIdentityRemoved", "DeidentificationMethod", "DeidentificationMethodCodeSequence",
        "LongitudinalTemporalInformationModified", "BurnedInAnnotation", "SOPClassUID", "SOPInstanceUID",
        "LossyImageCompression", "LossyImageCompressionRatio", "LossyImageCompressionMethod",
        "PhotometricInterpretation", "PlanarConfiguration",
    )
}
#: Items of DeidentificationMethodCodeSequence (a code item the writer builds).
CODE_ITEM = {tag_for_keyword(k) for k in ("CodeValue", "CodingSchemeDesignator", "CodeMeaning")}
METHOD_CODES = tag_for_keyword("DeidentificationMethodCodeSequence")
_HEX = re.compile(r"^[0-9a-fx]{8}$")


@dataclass(frozen=True)
class Pattern:
    value: int
    mask: int

    def matches(self, tag: int) -> bool:
        return tag & self.mask == self.value


def parse_pattern(text: str) -> Pattern | None:
    """`0xGGGGEEEE` (x = any nibble), `GGGGEEEE`, `(gggg,eeee)` or a keyword; None if it is none of them."""
    cleaned = str(text).strip()
    if cleaned[:2].lower() == "0x":
        cleaned = cleaned[2:]
    elif cleaned.startswith("(") and cleaned.endswith(")") and "," in cleaned:
        group, _, element = cleaned[1:-1].partition(",")
        cleaned = group.strip().zfill(4) + element.strip().zfill(4)
    lowered = cleaned.lower()
    if _HEX.match(lowered):
        value = int(lowered.replace("x", "0"), 16)
        mask = int("".join("0" if c == "x" else "f" for c in lowered), 16)
        return Pattern(value, mask)
    tag = tag_for_keyword(cleaned)
    return Pattern(tag, 0xFFFFFFFF) if tag is not None else None


class RecipeView:
    """Which tags a recipe lets through (any action but RETIRER), read from the recipe's JSON document."""

    def __init__(self, document: dict) -> None:
        general = document.get("general_rules", document if "general_rules" not in document else {})
        specific = document.get("specific_rules", {}) if "general_rules" in document else {}
        self.exact: dict[int, str] = {}
        self.patterns: list[tuple[Pattern, str]] = []
        self.private: dict[tuple[int, str, int], str] = {}
        self.specific: dict[tuple[int, int], str] = {}
        for key, entry in (general or {}).items():
            if not isinstance(entry, list) or len(entry) < 3:
                continue
            pattern = parse_pattern(key)
            if pattern is None:
                continue
            action = str(entry[2]).strip().upper()
            creator = entry[3].get("creator") if len(entry) > 3 and isinstance(entry[3], dict) else None
            if creator is not None:
                self.private[(pattern.value >> 16, str(creator).strip().lower(), pattern.value & 0xFF)] = action
            elif pattern.mask == 0xFFFFFFFF:
                self.exact[pattern.value] = action
            else:
                self.patterns.append((pattern, action))
        for key, value in (specific or {}).items():
            for entry in value if isinstance(value, list) else [value]:
                pattern = parse_pattern(key)
                parent = parse_pattern(str(entry.get("sequence", ""))) if isinstance(entry, dict) else None
                if pattern and parent:
                    self.specific[(parent.value, pattern.value)] = str(entry.get("rule", "")).strip().upper()
        self.authorised_word_lists = [str(w) for w in document.get("authorised_words", [])]

    def action(self, tag: int, parent: int | None = None) -> str | None:
        """The action for a public tag at this place (None: the recipe does not name it = removed)."""
        if parent is not None and (parent, tag) in self.specific:
            return self.specific[(parent, tag)]
        if tag in self.exact:
            return self.exact[tag]
        for pattern, action in self.patterns:
            if pattern.matches(tag):
                return action
        return None

    def allows(self, tag: int, parent: int | None = None) -> bool:
        if tag in WRITER_MARKS or (parent == METHOD_CODES and tag in CODE_ITEM):
            return True
        action = self.action(tag, parent)
        return action is not None and action != REMOVE

    def keeps(self, tag: int, parent: int | None = None) -> bool:
        return self.action(tag, parent) == KEEP

    def allows_private(self, group: int, creator: str, element_byte: int) -> bool:
        action = self.private.get((group, creator.strip().lower(), element_byte))
        return action is not None and action != REMOVE

    def allows_creator(self, group: int, creator: str) -> bool:
        lowered = creator.strip().lower()
        return any(g == group and c == lowered and a != REMOVE for (g, c, _), a in self.private.items())
