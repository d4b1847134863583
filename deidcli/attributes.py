"""Applying a recipe to a dataset: every attribute, at every depth, zero trust.

The engine builds a NEW dataset from the source instead of deleting from it: what is not explicitly
carried over cannot leak. Rules of precedence (the recipe issue's contract):

* a tag with no rule is removed (zero trust), public or private, at any depth;
* a private tag matches only a rule that names its private creator;
* along a sequence path the strictest action wins (a kept tag in a removed sequence is gone),
  unless a specific rule names the leaf inside its direct parent sequence, which wins.

The engine knows nothing about pixels or OCR; it copies PixelData like any other kept attribute.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from pydicom.datadict import dictionary_VR
from pydicom.dataelem import DataElement, RawDataElement, convert_raw_data_element
from pydicom.dataset import Dataset
from pydicom.multival import MultiValue
from pydicom.sequence import Sequence
from pydicom.tag import BaseTag
from pydicom.values import convert_SQ

from deidcli.charset import defined_character_set
from deidcli.codes import clean_code_item
from deidcli.datasets import new_dataset
from deidcli.elements import ascii_texts, decoded
from deidcli.errors import FileRejected
from deidcli.pseudonyms import BINARY_VRS, NUMERIC_VRS, Pseudonymizer, Replacement
from deidcli.recipe.model import Action, Recipe, strictest

# Module-level aliases: enum attribute access is measurably slow in this per-element hot loop.
_CONSERVER, _RETIRER, _EFFACER, _PSEUDONYMISER = Action.CONSERVER, Action.RETIRER, Action.EFFACER, Action.PSEUDONYMISER

#: Sequences nested deeper than this are refused (real data stays below 10; hostile files go to 1000+).
MAX_DEPTH = 32
#: Pixel data is cleaned by the pixel stage, not by a value pseudonym: PSEUDONYMISER on it (kskit's recipe
#: says so) would empty the image, so it means "keep, and let the pixel stage mask it".
PIXEL_DATA_TAGS = frozenset({0x7FE00008, 0x7FE00009, 0x7FE00010})
#: Raw elements that must be decoded before copying: sequences are recursed into, implicit VR (None)
#: and UN may hide one.
_CONVERT_FIRST_VRS = frozenset({None, "SQ", "UN"})
#: Always carried over: needed to decode text correctly, identifies nobody.
STRUCTURAL_TAGS = frozenset({0x00080005})


def _registered_only_uid_tags() -> frozenset[int]:
    """UI attributes whose values the standard itself defines (SOP classes, transfer syntaxes, coding
    schemes, context groups): a value there that DICOM does not register is no class but a stranger's
    string (an MRN, a path), so "keep" means "keep if registered, else pseudonymise"."""
    from pydicom.datadict import DicomDictionary

    named = {"CodingSchemeUID", "ContextUID", "MappingResourceUID", "ContextGroupExtensionCreatorUID"}
    return frozenset(
        tag for tag, (vr, _, _, _, keyword) in DicomDictionary.items()
        if vr == "UI" and (keyword.endswith(("ClassUID", "SyntaxUID")) or keyword in named)
    )


REGISTERED_ONLY_UID_TAGS = _registered_only_uid_tags()


#: (FFFE,E000) Item, as the first bytes of a sequence value.
_ITEM_TAG_LE, _ITEM_TAG_BE = b"\xfe\xff\x00\xe0", b"\xff\xfe\xe0\x00"


def safe_character_set(element: DataElement) -> DataElement:
    """SpecificCharacterSet kept only when every value is a defined term (see `deidcli.charset`)."""
    values = element.value if isinstance(element.value, list | MultiValue) else [element.value]
    terms = defined_character_set([str(value or "") for value in values])
    if terms == [str(value or "") for value in values] and element.VR == "CS":
        return element
    return DataElement(element.tag, "CS", terms if len(terms) > 1 else terms[0])


@lru_cache(maxsize=4096)
def _dictionary_vrs(tag: int) -> frozenset[str] | None:
    """The VRs the data dictionary allows for a public tag ("US or SS" gives two); None when unknown."""
    try:
        return frozenset(dictionary_VR(tag).split(" or "))
    except KeyError:
        return None


def _as_dictionary_vr(raw: RawDataElement | DataElement, source: Dataset, expected: frozenset[str]) -> DataElement | None:
    """A public element declared under a VR its dictionary entry does not allow, re-read under the
    dictionary VR; None when that is impossible (the caller then removes it).

    Why: the recipe action is meant for the dictionary VR. A sequence stored as OB/LT would be copied raw
    with the names in its items; a PN stored as UN would be "pseudonymised" as opaque bytes. Sequences
    are parsed as PS3.5 6.2.2 says for UN (implicit VR little endian), then in the file's own encoding.
    """
    value = raw.value
    if value is None:
        value = b""  # an empty element (pydicom reads a zero length as None): empty under the dictionary VR
    if isinstance(value, str):
        value = value.encode("latin-1", "ignore")  # an LT-declared sequence read as text by pydicom
    if len(expected) != 1 or not isinstance(value, bytes):
        return None  # "OB or OW" stored as something else, or an in-memory value: no single reading to trust
    (vr,) = expected
    implicit, little = source.original_encoding
    if vr == "SQ":
        if not value:
            return DataElement(raw.tag, "SQ", [])
        for is_implicit, is_little in ((True, True), (bool(implicit), little is not False)):
            if value[:4] != (_ITEM_TAG_LE if is_little else _ITEM_TAG_BE):
                continue  # a sequence value starts with an item; anything else is not one
            try:
                items = convert_SQ(value, is_implicit, is_little, source._character_set)
            except Exception:  # noqa: BLE001, S112 - a parse failure means "not this encoding"
                continue
            if len(items):
                return DataElement(raw.tag, "SQ", items)
        return None
    retyped = RawDataElement(raw.tag, vr, len(value), value, 0, bool(implicit), little is not False)
    try:
        return convert_raw_data_element(retyped, encoding=source._character_set, ds=source)
    except Exception:  # noqa: BLE001 - a value that does not read under its dictionary VR is removed
        return None


@dataclass
class AttributeReport:
    """What the recipe did to one dataset (counts go to the audit; replacements to the private mapping)."""

    kept: int = 0
    removed: int = 0
    emptied: int = 0
    pseudonymised: int = 0
    dates_shifted: int = 0
    dates_removed: int = 0
    replacements: list[Replacement] = field(default_factory=list)

    def add_tally(self, tally: dict[Action, int]) -> None:
        """Count elements by action: `tally` holds how many elements of one dataset level were given each."""
        for action, number in tally.items():
            if action is _CONSERVER:
                self.kept += number
            elif action is _RETIRER:
                self.removed += number
            elif action is _EFFACER:
                self.emptied += number
            else:
                self.pseudonymised += number


def apply_recipe(source: Dataset, recipe: Recipe, pseudonymizer: Pseudonymizer) -> tuple[Dataset, AttributeReport]:
    """Return a new dataset holding only what `recipe` allows, and a report of what was done.

    File meta is not copied: the writer rebuilds it from the result.
    """
    report = AttributeReport()
    try:
        target = _apply_to_dataset(source, recipe, pseudonymizer, report, parent=None, floor=_CONSERVER, depth=0)
    except RecursionError as error:
        raise FileRejected("too_deep", "sequence nesting exhausted the recursion limit") from error
    return target, report


def _private_creators(source: Dataset) -> dict[tuple[int, int], str]:
    """(group, block) -> private creator string, for the private blocks of one dataset level.

    Only the creator elements themselves are decoded (keys are scanned without touching values).
    """
    creators: dict[tuple[int, int], str] = {}
    for tag, raw in list(source._dict.items()):
        if tag >> 16 & 1 and 0x0010 <= tag & 0xFFFF <= 0x00FF:
            texts = ascii_texts(source, raw) if raw.VR == "LO" else None
            value = (texts[0] if len(texts) == 1 else texts) if texts is not None else decoded(source, raw).value
            if isinstance(value, bytes):
                value = value.decode("latin-1", "replace")
            if isinstance(value, str):
                creators[(tag >> 16, tag & 0xFFFF)] = value.strip()
    return creators


#: Above this many cached decisions the cache starts again (hostile files can invent creators and tags).
_MAX_DECISIONS = 50_000


def _new_dataset_like(source: Dataset) -> Dataset:
    """An empty Dataset with the source's encoding: kept elements are copied raw (bytes as read, no
    decode/encode round trip), and pydicom writes them as they are when the output encoding matches.
    Sequence items inherit the character set from their parent; pydicom compares it with the original one
    to decide whether raw values must be re-encoded, so the source item's parent encoding comes along.
    Built by `deidcli.datasets.new_dataset` (a sequence-heavy file makes a dozen of these)."""
    implicit, little = source.original_encoding
    return new_dataset({}, source._parent_encoding, implicit, little, source.original_character_set)


def _decision(recipe: Recipe, tag: int, creator: str | None, parent: int | None, floor: Action) -> Action:
    """The action for one element by its tag and place, cached per recipe (the same few hundred tags recur
    in every file): the recipe's rule, then the two fixed overrides (pixel data is never pseudonymised,
    registered-only UIDs are checked). A VR the dictionary forbids is decided per element, by the caller."""
    cache = recipe.decisions
    key = (tag, creator, parent, floor)
    action = cache.get(key)
    if action is None:
        action = _action_for(recipe, tag, creator, parent, floor)
        if tag in PIXEL_DATA_TAGS and action is Action.PSEUDONYMISER:
            action = _CONSERVER
        elif action is _CONSERVER and tag in REGISTERED_ONLY_UID_TAGS:
            action = Action.PSEUDONYMISER  # the UID pseudonymiser returns registered UIDs unchanged
        if len(cache) >= _MAX_DECISIONS:
            cache.clear()
        cache[key] = action
    return action


def _apply_to_dataset(
    source: Dataset,
    recipe: Recipe,
    pseudonymizer: Pseudonymizer,
    report: AttributeReport,
    parent: int | None,
    floor: Action,
    depth: int,
) -> Dataset:
    if depth > MAX_DEPTH:
        raise FileRejected("too_deep", f"sequences nested deeper than {MAX_DEPTH}")
    target = _new_dataset_like(source)
    source_elements = source._dict
    has_private = any(tag >> 16 & 1 for tag in source_elements)
    creators = _private_creators(source) if has_private else {}
    kept_blocks: set[tuple[int, int]] = set()
    # Raw kept elements go straight into the new dataset's element dict: `Dataset.__setitem__` would
    # re-validate the tag, look up private creators (not added yet, see below) and reset pixel caches
    # (the dataset is new), which was a tenth of the header pass.
    elements = target._dict
    decisions = recipe.decisions
    tally = dict.fromkeys(Action, 0)  # per action, added to the report at the end (`AttributeReport.add_tally`)
    # A snapshot: decoding an element below replaces it in the source's dict.
    for raw in list(source_elements.values()):
        if raw.value is None and type(raw) is RawDataElement:
            raw = source[raw.tag]  # as `Dataset.get_item` does: a deferred or value-less raw element is decoded
        tag = int(raw.tag)
        group, element = tag >> 16, tag & 0xFFFF
        if element == 0 or group in (0x0000, 0x0002):
            continue  # group lengths are recomputed; command and meta groups never belong in an instance
        if tag in STRUCTURAL_TAGS:
            target[tag] = safe_character_set(source[tag])
            continue
        creator = None
        if group & 1:
            if element <= 0x00FF:
                continue  # creators are re-added below for blocks that keep something
            creator = creators.get((group, element >> 8))
        action = decisions.get((tag, creator, parent, floor))  # `_decision`'s cache, read without a call
        if action is None:
            action = _decision(recipe, tag, creator, parent, floor)
        vr = raw.VR
        retyped = None
        if (vr is not None and creator is None and (expected := _dictionary_vrs(tag))
                and vr not in expected and " or " not in vr):  # "OB or OW": in memory, not yet resolved
            retyped = _as_dictionary_vr(raw, source, expected) if action is not _RETIRER else None
            if retyped is None or retyped.VR not in expected:
                action = _RETIRER  # fail closed: nothing is copied under a VR its dictionary forbids
        tally[action] += 1
        if action is not _CONSERVER and action is not Action.PSEUDONYMISER and raw.value and _is_date(raw):
            report.dates_removed += 1  # removed or emptied: LongitudinalTemporalInformationModified says REMOVED
        if action is _RETIRER:
            continue
        if action is _CONSERVER and raw.is_raw and vr not in _CONVERT_FIRST_VRS and retyped is None:
            elements[raw.tag] = raw  # kept as read: byte-exact and cheap
            if creator is not None:
                kept_blocks.add((group, element >> 8))
            continue
        if action is _EFFACER and retyped is None and vr not in _CONVERT_FIRST_VRS:
            # Emptied: only the tag and VR are needed, so the value is never decoded.
            elements[raw.tag] = _emptied(raw.tag, vr)
            if creator is not None:
                kept_blocks.add((group, element >> 8))
            continue
        if action is _PSEUDONYMISER and retyped is None and (texts := ascii_texts(source, raw)) is not None:
            # The values as pydicom would decode them, without building the source element (elements.py)
            empty = len(texts) == 1 and not texts[0]
            value = "" if empty else _pseudonyms(tag, vr, texts, pseudonymizer, report)
            elements[raw.tag] = DataElement(raw.tag, vr, value)  # raw.tag: already a BaseTag (no Tag() call)
            if creator is not None:
                kept_blocks.add((group, element >> 8))
            continue
        try:
            element_in = retyped if retyped is not None else decoded(source, raw)
        except Exception as error:  # pydicom raises many types on a corrupt value
            raise FileRejected("parse_failed", f"element ({group:04X},{element:04X}) unreadable") from error
        element_out = _transform(element_in, action, recipe, pseudonymizer, report, floor, depth)
        if element_out.VR == "SQ":
            target[tag] = element_out  # __setitem__ links the items to their parent dataset
        else:
            elements[element_out.tag] = element_out
        if creator is not None:
            kept_blocks.add((group, element >> 8))
    report.add_tally(tally)
    for group, block in kept_blocks:
        target[(group << 16) | block] = DataElement((group << 16) | block, "LO", creators[(group, block)])
    return target


def _is_date(raw) -> bool:
    """DA/DT, by the element's VR or (implicit VR files) the dictionary's."""
    vr = raw.VR
    if vr is None or vr == "UN":
        try:
            vr = dictionary_VR(raw.tag)
        except KeyError:
            return False
    return vr in ("DA", "DT")


def _action_for(recipe: Recipe, tag: int, creator: str | None, parent: int | None, floor: Action) -> Action:
    # A specific rule names a bare tag number. For a private tag that number means whatever any vendor put
    # in that block, so only creator-matched general rules may keep private data (fail closed).
    specific = None if tag >> 16 & 1 else recipe.specific_rule(tag, parent)
    if specific is not None:
        return specific.action
    rule = recipe.general_rule(tag, creator)
    if rule is None:
        return _RETIRER  # zero trust
    return rule.action if floor is _CONSERVER else strictest(rule.action, floor)


def _transform(
    element: DataElement,
    action: Action,
    recipe: Recipe,
    pseudonymizer: Pseudonymizer,
    report: AttributeReport,
    floor: Action,
    depth: int,
) -> DataElement:
    tag, vr = element.tag, element.VR
    if vr == "SQ":
        if action is _EFFACER:
            return DataElement(tag, vr, Sequence())
        inner_floor = strictest(action, floor)
        items = [
            _apply_to_dataset(item, recipe, pseudonymizer, report, parent=int(tag), floor=inner_floor, depth=depth + 1)
            for item in element.value
        ]
        return DataElement(tag, vr, Sequence([item for item in items if clean_code_item(item)]))
    if action is _CONSERVER:
        return element
    if action is _EFFACER:
        return _emptied(tag, vr)
    return DataElement(tag, vr, _pseudonymised_value(element, pseudonymizer, report))


def _emptied(tag, vr: str) -> DataElement:
    """`DataElement(tag, vr, empty)`: None, or b"" for a binary VR. pydicom's value setter returns an empty
    value as it is for every VR but UN (a public UN may become its dictionary VR) and SQ, so it is skipped: a
    fifth of the elements of a typical file are emptied."""
    value = b"" if vr in BINARY_VRS else None
    if vr == "UN" or vr == "SQ" or type(tag) is not BaseTag:
        return DataElement(tag, vr, value)
    return DataElement(tag, vr, value, already_converted=True)


def _pseudonymised_value(element: DataElement, pseudonymizer: Pseudonymizer, report: AttributeReport) -> object:
    vr, value = element.VR, element.value
    if value is None or value == "" or value == b"":
        return value
    if vr in BINARY_VRS:
        return b""  # no meaningful pseudonym for opaque bytes: a valid empty value
    if vr in NUMERIC_VRS:
        return [0] * len(value) if isinstance(value, (list, MultiValue)) else 0
    values = list(value) if isinstance(value, (list, MultiValue)) else [value]
    return _pseudonyms(int(element.tag), vr, [str(original) for original in values], pseudonymizer, report)


def _pseudonyms(tag: int, vr: str, texts: list[str], pseudonymizer: Pseudonymizer,
                report: AttributeReport) -> str | list[str]:
    """The pseudonym of each text value (one value: a str), dates counted and replacements recorded."""
    replaced = []
    for text in texts:
        pseudonym = pseudonymizer.text_value(text, vr)
        if vr in ("DA", "DT"):
            if pseudonym:
                report.dates_shifted += 1
            else:
                report.dates_removed += 1
        if pseudonym != text:
            report.replacements.append(Replacement(tag, vr, text, pseudonym))
        replaced.append(pseudonym)
    return replaced if len(replaced) > 1 else replaced[0]
