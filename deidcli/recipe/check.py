"""`deid check-recipe`: every problem of a recipe with its location, severity and a fix, plus a summary.

Why more than loading: `load_recipe` only refuses what cannot run. A recipe that runs can still leak
(keeping PatientName), do nothing (a rule for a private tag without its creator, a specific rule under a
removed parent) or mean nothing (PSEUDONYMISER on PixelData, read as CONSERVER). Those are warnings here,
measured against the PS3.15 basic profile so the user sees what their recipe does differently.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cache

from pydicom.datadict import get_entry, keyword_for_tag, tag_for_keyword

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
        lines.append(f"{self.name}: {len(self.errors)} error(s), {len(self.warnings)} warning(s)")
        if self.summary is not None:
            lines += self.summary.lines(show_all)
        return "\n".join(lines)


def check_recipe_text(text: str, name: str = "recipe",
                      setting_checks: Callable[[Recipe], list[Problem]] | None = None) -> CheckReport:
    """Check recipe JSON text: the loader's structural problems plus dictionary and risk checks.

    `setting_checks` adds problems about the recipe's settings that this package cannot judge (whether its
    word lists exist is the OCR's business); the CLI and `deidcli.check_recipe` pass the run's own checks.
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
    for rule in recipe.specific_rules:
        findings += _specific_problems(rule, recipe)
    replaced = {p.where for p in findings if "without a private creator" in p.message}
    kept = [p for p in problems if not (p.where in replaced and p.message == _PRIVATE_WITHOUT_CREATOR)]
    all_problems = kept + findings
    compare = not any(problem.severity == "error" for problem in all_problems)
    return CheckReport(recipe.name, all_problems, _summary(recipe, compare))


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
