"""`deid check-recipe`: every problem of a recipe with its location, severity and a fix, plus a summary.

Why more than loading: `load_recipe` only refuses what cannot run. A recipe that runs can still leak
(keeping PatientName), do nothing (a rule for a private tag without its creator, a specific rule under a
removed parent) or mean nothing (PSEUDONYMISER on PixelData, read as CONSERVER). Those are warnings here,
measured against the PS3.15 basic profile so the user sees what their recipe does differently.
"""

from __future__ import annotations

import json
import sys
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from pydicom.datadict import DicomDictionary, get_entry, keyword_for_tag, tag_for_keyword

from deidcli.recipe.load import Problem, parse_recipe_text
from deidcli.recipe.model import STRICTNESS, Action, Recipe, Rule
from deidcli.recipe.profiles import build_profile, option_keeping, table_by_tag

#: VRs where PSEUDONYMISER has no pseudonym: the engine writes 0 (numbers) or an empty value (bytes).
NUMERIC_VRS = frozenset({"US", "SS", "UL", "SL", "FL", "FD", "UV", "SV", "AT"})
BINARY_VRS = frozenset({"OB", "OW", "OF", "OD", "OL", "OV", "UN"})
PIXEL_DATA = 0x7FE00010
#: Keyword or VR values that claim nothing (kskit writes '-' where it has no keyword or VR).
PLACEHOLDERS = frozenset({"", "-", "?"})
#: How many differences from the basic profile the summary shows.
EXAMPLE_COUNT = 5

#: The command line flag that lets `deid run` use a recipe keeping patient identifiers.
RISK_FLAG = "--accept-recipe-risk"
#: Patient module (group 0010) VRs that carry a name, an ID or free text; with birth dates (keywords holding
#: "Birth") they are what `deid run` refuses to keep without the flag.
PATIENT_IDENTIFYING_VRS = frozenset({"PN", "LO", "SH", "LT", "ST", "UT", "UC", "SQ"})
#: Private blocks that are vendor-formatted binary blobs of free text deidcli cannot clean.
CSA_CREATOR = "siemens csa header"
CSA_ELEMENTS = {0x10: "CSA Image Header Info", 0x20: "CSA Series Header Info"}
#: Named first by a wildcard warning: the identifiers every reader recognises.
HEADLINE_KEYWORDS = ("PatientName", "PatientID", "PatientBirthDate", "PatientAddress", "PatientComments")
#: How many attributes a wildcard warning names.
WILDCARD_NAMES = 8

_VERB = {Action.RETIRER: "removes", Action.EFFACER: "empties", Action.PSEUDONYMISER: "replaces"}
_PRIVATE_WITHOUT_CREATOR = "private tag without a private creator never matches"


@dataclass
class CheckSummary:
    """Counts for the report: rules per action and how the recipe differs from the basic profile.

    `compared` is False when the recipe has errors: a comparison of rules that will not run would mislead.
    """

    rules_per_action: dict[str, int]
    specific_rules: int
    private_rules: int
    differences: int = 0
    less_strict: int = 0
    stricter: int = 0
    #: Every difference from the basic profile, least strict first (the ones to review).
    all_differences: list[str] = field(default_factory=list)
    compared: bool = True

    @property
    def examples(self) -> list[str]:
        """The differences a default report shows."""
        return self.all_differences[:EXAMPLE_COUNT]

    def lines(self, show_all: bool = False) -> list[str]:
        counts = ", ".join(f"{action.value} {self.rules_per_action.get(action.value, 0)}" for action in Action)
        total = sum(self.rules_per_action.values())
        lines = [
            f"{total} general rules ({counts}); {self.specific_rules} specific rules; "
            f"{self.private_rules} private rules",
        ]
        if not self.compared:
            return lines + ["not compared with the basic profile: fix the errors first"]
        lines.append(f"compared with the basic profile: {self.differences} attributes treated differently "
                     f"({self.less_strict} less strict, {self.stricter} stricter)")
        shown = self.all_differences if show_all else self.examples
        lines += [f"  {difference}" for difference in shown]
        if len(shown) < len(self.all_differences):
            lines.append(f"  ... and {len(self.all_differences) - len(shown)} more (--all lists every one)")
        return lines


@dataclass
class CheckReport:
    """What `check_recipe_text` found. `summary` is None when the recipe could not be parsed."""

    name: str
    problems: list[Problem]
    summary: CheckSummary | None

    @property
    def errors(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[Problem]:
        return [p for p in self.problems if p.severity == "warning"]

    def exit_code(self, strict: bool = False) -> int:
        """0 clean; 1 warnings when `strict`; 2 errors (the recipe would not load)."""
        if self.errors:
            return 2
        return 1 if strict and self.warnings else 0

    def render(self, show_all: bool = False) -> str:
        """The report as text; `show_all` lists every difference from the basic profile, not the first few."""
        lines = []
        for problem in self.problems:
            lines.append(f"{problem.severity}: {problem.where}: {problem.message}")
            if problem.hint:
                lines.append(f"    fix: {problem.hint}")
            if problem.refused_by_run:
                lines.append(f"    deid run refuses this recipe unless {RISK_FLAG} is given")
        lines.append(f"{self.name}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        if self.summary is not None:
            lines += self.summary.lines(show_all)
        return "\n".join(lines)


def check_recipe_text(text: str, name: str = "recipe",
                      setting_checks: Callable[[Recipe], list[Problem]] | None = None,
                      compare: bool = True) -> CheckReport:
    """Check recipe JSON text: the loader's structural problems plus dictionary and risk checks.

    `setting_checks` adds problems about the recipe's settings that this package cannot judge (whether its
    word lists exist is the OCR's business); the CLI and `deidcli.check_recipe` pass the run's own checks.
    `compare=False` leaves out the comparison with the basic profile (a run prints only the problems).
    """
    recipe, problems = parse_recipe_text(text, name)
    if recipe is None:
        return CheckReport(name, problems, None)
    if setting_checks is not None:
        problems = problems + setting_checks(recipe)
    findings: list[Problem] = []
    for rule in recipe.rules:
        findings += _dictionary_problems(rule)
        findings += _rule_risks(rule, recipe)
        findings += _wildcard_keep_risks(rule, recipe)
        findings += _csa_header_risks(rule)
    for rule in recipe.specific_rules:
        findings += _specific_problems(rule, recipe)
    replaced = {p.where for p in findings if "without a private creator" in p.message}
    kept = [p for p in problems if not (p.where in replaced and p.message == _PRIVATE_WITHOUT_CREATOR)]
    all_problems = kept + findings
    compare = compare and not any(problem.severity == "error" for problem in all_problems)
    return CheckReport(recipe.name, all_problems, _summary(recipe, compare))


def check_loaded_recipe(recipe: Recipe, compare: bool = True) -> CheckReport:
    """Check a loaded recipe (what `deid run` does before its first file): from its source text when it was
    read from a file, else from its JSON form (a profile built in memory, a Recipe made in Python)."""
    text = recipe.source_text or json.dumps(recipe.to_json())
    return check_recipe_text(text, recipe.name, compare=compare)


def review_for_run(recipe: Recipe, accept_risk: bool) -> CheckReport:
    """What `deid run` does with its recipe before the first file: print every warning `check-recipe` gives
    (stderr, once), and refuse a recipe that keeps a patient name, ID, birth date or free text unless the
    risk is accepted (OptionError: a usage error, exit 2, nothing created)."""
    from deidcli.errors import OptionError

    report = check_loaded_recipe(recipe, compare=False)  # the basic-profile comparison is check-recipe's
    for problem in report.warnings:
        print(f"recipe {recipe.name}: {problem}", file=sys.stderr)
    refused = [problem for problem in report.warnings if problem.refused_by_run]
    if refused and not accept_risk:
        places = ", ".join(problem.where for problem in refused)
        raise OptionError(
            "recipe {name} keeps patient identifiers (a name, an ID, a birth date or free text of the patient "
            "module) at {places}: refused. Remove or pseudonymise them (see 'deid check-recipe'), or give "
            "{accept_recipe_risk} if your protocol allows releasing them",
            name=repr(recipe.name), places=places,
        )
    return report


def is_patient_identifier(tag: int) -> bool:
    """A name, an ID, a birth date or free text of the patient module (group 0010). Unknown group 0010 tags
    count too: nothing says they are harmless."""
    if tag >> 16 != 0x0010 or tag & 0xFFFF == 0:
        return False
    entry = _dictionary_entry(tag)
    if entry is None:
        return True
    vr, keyword = entry
    return "Birth" in keyword or bool(_split_vrs(vr) & PATIENT_IDENTIFYING_VRS)


# -- helpers ------------------------------------------------------------------------------------------
def _tag_text(value: int) -> str:
    return f"0x{value:08x}"


def _dictionary_entry(rule_value: int) -> tuple[str, str] | None:
    """(VR, keyword) from pydicom's dictionary, repeating groups included; None when unknown."""
    try:
        vr, _vm, _name, _retired, keyword = get_entry(rule_value)
    except KeyError:
        return None
    return vr, keyword


def _named(rule: Rule) -> str:
    entry = _dictionary_entry(rule.pattern.value) if not rule.pattern.is_private else None
    keyword = entry[1] if entry else rule.keyword
    return f"{keyword} ({rule.pattern.text})" if keyword else rule.pattern.text


def _vr_of(rule: Rule) -> str:
    entry = _dictionary_entry(rule.pattern.value) if not rule.pattern.is_private else None
    return entry[0] if entry else rule.vr.strip().upper()


@cache
def _basic() -> Recipe:
    return build_profile("basic")


@cache
def _basic_by_pattern() -> dict[tuple[int, int], Action]:
    return {(rule.pattern.value, rule.pattern.mask): rule.action for rule in _basic().rules}


def _basic_action(rule: Rule) -> Action | None:
    """What the basic profile's table does with this tag (None: not in Table E.1-1)."""
    if rule.pattern.is_private or rule.creator is not None:
        return None
    if rule.pattern.is_exact and rule.pattern.value not in table_by_tag():
        return None
    return _basic_by_pattern().get((rule.pattern.value, rule.pattern.mask))


# -- dictionary consistency ---------------------------------------------------------------------------
def _split_vrs(text: str) -> set[str]:
    cleaned = text.upper().replace("|", " OR ").replace("/", " OR ")
    return {part.strip() for part in cleaned.split(" OR ") if part.strip()}


def _normalised(text: str) -> str:
    return "".join(character for character in text.lower() if character.isalnum())


def _same_attribute(written: str, tag_value: int, keyword: str) -> bool:
    """Whether `written` names the tag: its keyword or its name, ignoring case, spaces and punctuation
    (kskit writes 'Pre-Medication' and 'X-Ray Tube Current in mA')."""
    if written == keyword:  # most rules name their keyword exactly: no normalising (a third of the check)
        return True
    try:
        name = get_entry(tag_value)[2]
    except KeyError:
        name = ""
    return _normalised(written) in {_normalised(keyword), _normalised(name)}


def _dictionary_problems(rule: Rule) -> list[Problem]:
    """Keyword or VR disagreeing with the tag: the tag wins, so the author probably meant another one.

    An empty or placeholder ('-') keyword or VR claims nothing and is not checked.
    """
    if rule.pattern.is_private or rule.creator is not None:
        return []
    entry = _dictionary_entry(rule.pattern.value)
    if entry is None:
        return []
    vr, keyword = entry
    problems = []
    written = rule.keyword.strip()
    if written not in PLACEHOLDERS and keyword and not _same_attribute(written, rule.pattern.value, keyword):
        meant = tag_for_keyword(written)
        hint = f"write {keyword!r}"
        if meant is not None:
            hint += f", or if you meant {written!r}, use tag {_tag_text(meant)}"
        problems.append(Problem(
            "warning", rule.where,
            f"keyword {written!r} does not match tag {rule.pattern.text}: "
            f"pydicom's dictionary names it {keyword!r}",
            hint,
        ))
    if rule.vr.strip() not in PLACEHOLDERS and vr and not _split_vrs(rule.vr) <= _split_vrs(vr):
        problems.append(Problem(
            "warning", rule.where,
            f"VR {rule.vr.strip()!r} does not match tag {rule.pattern.text} ({keyword}): "
            f"pydicom's dictionary says {vr!r}",
            f"write {vr!r}",
        ))
    return problems


# -- risks of one general rule ----------------------------------------------------------------------
def _rule_risks(rule: Rule, recipe: Recipe) -> list[Problem]:
    if rule.pattern.group == 0x0002:
        return [Problem("warning", rule.where,
                        f"rule for file meta {_named(rule)} is ignored: the writer rebuilds group 0002",
                        "remove it")]
    if rule.action is Action.CONSERVER:
        return _keep_risks(rule, recipe)
    if rule.action is Action.PSEUDONYMISER:
        return _pseudonymise_risks(rule)
    return []


def _keep_risks(rule: Rule, recipe: Recipe) -> list[Problem]:
    if rule.pattern.is_private and rule.creator is None:
        return [Problem(
            "warning", rule.where,
            f"keeps private tag {rule.pattern.text} without a private creator: private tags match only "
            "rules naming their creator, so nothing is kept (and any vendor's data could sit at that number)",
            'add {"creator": "..."} as 4th item and write the tag as 0xGGGGxxEE',
        )]
    basic = _basic_action(rule)
    if basic is None and rule.pattern.is_exact and is_patient_identifier(rule.pattern.value):
        return [Problem("warning", rule.where, f"keeps {_named(rule)}, a patient name, ID, birth date or free text",
                        "use RETIRER or PSEUDONYMISER", refused_by_run=True)]
    if basic is None or basic is Action.CONSERVER:
        return []
    option = option_keeping(rule.pattern.value, recipe.method_codes) if rule.pattern.is_exact else None
    if option is not None and option.code in recipe.method_codes:
        return []  # the recipe declares the PS3.15 option that allows keeping it
    allow = (
        f"; keep it only if your protocol allows the {option.name} option and declare its code "
        f"{option.code} in deidentification_method_codes"
        if option else ""
    )
    if _vr_of(rule) == "SQ":
        return [Problem(
            "warning", rule.where,
            f"keeps sequence {_named(rule)} whose items hold identifying attributes "
            f"(the basic profile {_VERB[basic]} it: {basic.value})",
            f"use {basic.value}, or keep only the item attributes you need with specific rules{allow}",
        )]
    return [Problem(
        "warning", rule.where,
        f"keeps {_named(rule)}, which the basic profile {_VERB[basic]} ({basic.value})",
        f"use {basic.value}{allow}",
        refused_by_run=rule.pattern.is_exact and is_patient_identifier(rule.pattern.value),
    )]


def _wildcard_keep_risks(rule: Rule, recipe: Recipe) -> list[Problem]:
    """A wildcard CONSERVER (`0x0010xxxx`) keeps every attribute it matches that no exact rule names: list
    the identifying ones (the basic profile does not keep them, or they are patient identifiers)."""
    if rule.action is not Action.CONSERVER or rule.pattern.is_exact or rule.creator is not None:
        return []
    kept = []
    for tag in _public_tags_matching(rule):
        if recipe.general_rule(tag) is not rule:
            continue  # an exact rule, or an earlier wildcard, decides for this tag
        basic = _basic_by_pattern().get((tag, 0xFFFFFFFF)) if tag in table_by_tag() else None
        option = option_keeping(tag, recipe.method_codes)
        allowed = option is not None and option.code in recipe.method_codes
        if is_patient_identifier(tag) or (basic is not None and basic is not Action.CONSERVER and not allowed):
            kept.append(tag)
    if not kept:
        return []
    kept.sort(key=_naming_order)
    names = ", ".join(_label(tag) for tag in kept[:WILDCARD_NAMES])
    more = f" and {len(kept) - WILDCARD_NAMES} more" if len(kept) > WILDCARD_NAMES else ""
    return [Problem(
        "warning", rule.where,
        f"wildcard {rule.pattern.text} keeps {len(kept)} identifying attribute(s) no other rule names: "
        f"{names}{more}",
        "keep only the attributes you need, one exact rule each, or add rules that remove or pseudonymise these",
        refused_by_run=any(is_patient_identifier(tag) for tag in kept),
    )]


def _naming_order(tag: int) -> tuple[int, int, int]:
    """Names first, then birth dates, other patient identifiers, the rest; known attributes before unknown."""
    entry = _dictionary_entry(tag)
    vr, keyword = entry if entry else ("", "")
    if keyword in HEADLINE_KEYWORDS:
        return 0, HEADLINE_KEYWORDS.index(keyword), tag
    rank = 1 if "PN" in vr else 2 if "Birth" in keyword else 3 if is_patient_identifier(tag) else 4
    return rank, 0 if keyword else 1, tag


def _label(tag: int) -> str:
    """Keyword (0xGGGGEEEE) from pydicom, else from the standard's table, else the tag alone."""
    row = table_by_tag().get(tag)
    keyword = keyword_for_tag(tag) or (row.keyword if row and row.keyword != "Unknown" else "")
    return f"{keyword} ({_tag_text(tag)})" if keyword else _tag_text(tag)


def _public_tags_matching(rule: Rule) -> list[int]:
    """Dictionary and basic-profile tags a wildcard pattern matches, in order (repeating groups excluded)."""
    tags = {tag for tag in DicomDictionary if rule.pattern.matches(tag)}
    tags |= {tag for tag in table_by_tag() if rule.pattern.matches(tag)}
    return sorted(tag for tag in tags if tag >> 16 not in (0x0000, 0x0002) and not tag >> 16 & 1 and tag & 0xFFFF)


def _csa_header_risks(rule: Rule) -> list[Problem]:
    """Keeping a SIEMENS CSA header: a binary blob of vendor text (protocol, operator, free text) that no
    recipe rule and no OCR can clean."""
    if rule.creator is None or rule.creator.strip().lower() != CSA_CREATOR or rule.action is Action.RETIRER:
        return []
    element = rule.pattern.value & 0xFF
    if rule.pattern.group != 0x0029 or element not in CSA_ELEMENTS:
        return []
    return [Problem(
        "warning", rule.where,
        f"keeps the SIEMENS CSA header ({CSA_ELEMENTS[element]}, 0029,xx{element:02x}): a binary blob of vendor "
        "text that can hold names, IDs and free text, which deidcli cannot clean",
        "use RETIRER; keep only the public attributes you need",
    )]


def _pseudonymise_risks(rule: Rule) -> list[Problem]:
    vr = _vr_of(rule)
    if rule.pattern.value == PIXEL_DATA and rule.pattern.is_exact:
        return [Problem(
            "warning", rule.where,
            f"PSEUDONYMISER on {_named(rule)} is read as CONSERVER: pixels have no pseudonym; "
            "burned-in text is masked by the pixel stage",
            "use CONSERVER",
        )]
    if _basic_action(rule) is Action.PSEUDONYMISER:
        return []  # the standard asks for a dummy value here (D): a dummy is what PSEUDONYMISER gives
    if vr == "SQ":
        return [Problem(
            "warning", rule.where,
            f"PSEUDONYMISER on sequence {_named(rule)} means nothing for a sequence: the engine applies it to "
            "every attribute inside (values kept there become dummies)",
            "use CONSERVER to keep the sequence (its item attributes need their own rules) or RETIRER",
        )]
    if vr in NUMERIC_VRS or vr in BINARY_VRS:
        dummy = "0" if vr in NUMERIC_VRS else "an empty value"
        return [Problem(
            "warning", rule.where,
            f"PSEUDONYMISER on {_named(rule)} (VR {vr}) has no pseudonym: the value becomes {dummy}",
            "use CONSERVER to keep the value, or RETIRER to remove it",
        )]
    return []


# -- specific rules -----------------------------------------------------------------------------------
def _specific_problems(rule: Rule, recipe: Recipe) -> list[Problem]:
    assert rule.parent is not None
    parent = rule.parent
    if rule.pattern.group % 2 or parent.group % 2:
        private = rule.pattern if rule.pattern.group % 2 else parent
        return [Problem(
            "warning", rule.where,
            f"specific rule names private tag {private.text} without a private creator: a specific rule matches "
            "by number, which in a private block is whatever any vendor stores there, so deid run ignores it "
            "for private tags (they are removed unless a general rule names their creator)",
            'name private attributes in general_rules with {"creator": "..."} as 4th item (tag 0xGGGGxxEE)',
        )]
    entry = _dictionary_entry(parent.value) if not parent.is_private else None
    parent_name = f"{entry[1]} ({parent.text})" if entry and entry[1] else parent.text
    if entry is not None and entry[0] != "SQ":
        return [Problem(
            "error", rule.where,
            f"parent {parent_name} is not a sequence (VR {entry[0]}): the rule can never apply",
            "name the sequence (VR SQ) whose items hold the attribute",
        )]
    general = recipe.general_rule(parent.value) if parent.is_exact and not parent.is_private else None
    if general is None:
        keyword = entry[1] if entry else "Keyword"
        return [Problem(
            "warning", rule.where,
            f"parent sequence {parent_name} has no general rule: zero trust removes it, so this rule never applies",
            f'add "{parent.text}": ["{keyword}", "SQ", "CONSERVER"] to general_rules',
        )]
    if general.action in (Action.RETIRER, Action.EFFACER):
        return [Problem(
            "warning", rule.where,
            f"parent sequence {parent_name} is {general.action.value}: its items are gone, so this rule never applies",
            f"make {parent.text} CONSERVER, or remove this rule",
        )]
    return _specific_keep_risk(rule, parent_name)


def _specific_keep_risk(rule: Rule, parent_name: str) -> list[Problem]:
    """A specific CONSERVER inside a kept sequence still keeps an identifying attribute there."""
    if rule.action is not Action.CONSERVER:
        return []
    basic = _basic_action(rule)
    if basic is None or basic is Action.CONSERVER:
        return []
    keyword = keyword_for_tag(rule.pattern.value) if rule.pattern.is_exact else ""
    name = f"{keyword} ({rule.pattern.text})" if keyword else rule.pattern.text
    return [Problem(
        "warning", rule.where,
        f"keeps {name} inside {parent_name}, which the basic profile {_VERB[basic]} ({basic.value})",
        f"use {basic.value}",
        refused_by_run=rule.pattern.is_exact and is_patient_identifier(rule.pattern.value),
    )]


# -- summary ----------------------------------------------------------------------------------------
def _summary(recipe: Recipe, compare: bool = True) -> CheckSummary:
    counts = Counter(rule.action.value for rule in recipe.rules)
    summary = CheckSummary(
        rules_per_action=dict(counts),
        specific_rules=len(recipe.specific_rules),
        private_rules=sum(1 for rule in recipe.rules if rule.creator is not None),
        compared=compare,
    )
    if not compare:
        return summary
    basic = _basic()
    tags = {
        rule.pattern.value
        for source in (recipe.rules, basic.rules)
        for rule in source
        if rule.pattern.is_exact and rule.creator is None and rule.pattern.group not in (0x0000, 0x0002)
        and not rule.pattern.is_private
    }
    differences = []
    for tag in sorted(tags):
        ours, theirs = _effective(recipe, tag), _effective(basic, tag)
        if ours is not theirs:
            differences.append((STRICTNESS[ours] - STRICTNESS[theirs], tag, ours, theirs))
    summary.differences = len(differences)
    summary.less_strict = sum(1 for delta, *_ in differences if delta < 0)
    summary.stricter = summary.differences - summary.less_strict
    differences.sort(key=lambda item: (item[0], item[1]))  # least strict first: the ones to review
    for _delta, tag, ours, theirs in differences:
        keyword = keyword_for_tag(tag) or _tag_text(tag)
        summary.all_differences.append(f"{keyword} ({_tag_text(tag)}): basic {theirs.value}, this recipe {ours.value}")
    return summary


def _effective(recipe: Recipe, tag: int) -> Action:
    rule = recipe.general_rule(tag)
    return rule.action if rule is not None else Action.RETIRER  # zero trust
