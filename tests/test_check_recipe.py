"""`deid check-recipe` and `deid recipe list|show|export`: each problem class with its exact message,
location, severity and fix, the summary, and the exit codes (0 clean, 1 warnings with --strict, 2 errors)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from deidcli.commands.recipes import check_recipe, recipe
from deidcli.recipe import Problem, load_recipe
from deidcli.recipe.check import check_recipe_text

REPO = Path(__file__).resolve().parents[1]


def recipe_text(general: dict, specific: dict | None = None, **settings) -> str:
    return json.dumps({"name": "t", **settings, "general_rules": general, "specific_rules": specific or {}})


def problems_of(text: str) -> list[Problem]:
    return check_recipe_text(text, "t").problems


def only(text: str) -> Problem:
    problems = problems_of(text)
    assert len(problems) == 1, problems
    return problems[0]


# -- structural problems (from the loader) -------------------------------------------------------------
def test_not_json():
    problem = only("{")
    assert problem == Problem("error", "line 1 column 2", "not valid JSON: Expecting property name enclosed in double quotes",
                              "check commas, quotes and brackets")


def test_wrong_shape_top_level():
    assert only("[]").message == "a recipe must be a JSON object"
    assert only("[]").severity == "error"


def test_wrong_shape_rule():
    problem = only(recipe_text({"0x00100010": "CONSERVER"}))
    assert (problem.severity, problem.where, problem.message) == (
        "error", "general_rules['0x00100010']", "a rule must be [keyword, VR, ACTION]")


def test_unknown_action():
    problem = only(recipe_text({"0x00280010": ["Rows", "US", "KEEP"]}))
    assert problem == Problem("error", "general_rules['0x00280010']", "unknown action 'KEEP'",
                              "use one of CONSERVER, RETIRER, EFFACER, PSEUDONYMISER")


def test_malformed_tag():
    problem = only(recipe_text({"0x0028": ["Rows", "US", "CONSERVER"]}))
    assert problem.severity == "error"
    assert problem.message == (
        "malformed tag: '0x0028' is not a tag (expected 0xGGGGEEEE, (gggg,eeee) or a DICOM keyword)")
    assert problem.hint == "write tags as 0xGGGGEEEE"


def test_duplicate_tags_differing_only_in_case():
    text = '{"general_rules": {"0x0040a078": ["AuthorObserverSequence", "SQ", "RETIRER"], ' \
           '"0x0040A078": ["AuthorObserverSequence", "SQ", "RETIRER"]}}'
    problem = only(text)
    assert problem == Problem("error", "general_rules['0x0040A078']",
                              "duplicate of general_rules['0x0040a078'] (tags are case-insensitive)",
                              "keep one rule per tag")


def test_kskit_private_line_is_a_warning():
    problem = only(recipe_text({"0xggggeeee) where gggg is od": ["", "", "RETIRER"]}))
    assert problem.severity == "warning"
    assert problem.message == "not a tag: kskit's 'all private attributes' line"


# -- dictionary consistency ----------------------------------------------------------------------------
def test_keyword_that_disagrees_with_the_tag_names_the_right_one():
    problem = only(recipe_text({"0x00280010": ["Columns", "US", "CONSERVER"]}))
    assert problem == Problem(
        "warning", "general_rules['0x00280010']",
        "keyword 'Columns' does not match tag 0x00280010: pydicom's dictionary names it 'Rows'",
        "write 'Rows', or if you meant 'Columns', use tag 0x00280011",
    )


def test_keyword_written_as_the_attribute_name_is_accepted():
    assert problems_of(recipe_text({"0x00189328": ["Exposure Time in ms", "FD", "CONSERVER"]})) == []


def test_vr_that_disagrees_with_the_tag():
    problem = only(recipe_text({"0x00280010": ["Rows", "SS", "CONSERVER"]}))
    assert problem == Problem("warning", "general_rules['0x00280010']",
                              "VR 'SS' does not match tag 0x00280010 (Rows): pydicom's dictionary says 'US'",
                              "write 'US'")


def test_placeholder_keyword_and_vr_are_not_checked():
    assert problems_of(recipe_text({"0x00280010": ["-", "-", "CONSERVER"]})) == []


def test_alternative_vrs_are_accepted():
    assert problems_of(recipe_text({"0x00280106": ["SmallestImagePixelValue", "US or SS", "CONSERVER"]})) == []


# -- specific rules ------------------------------------------------------------------------------------
def test_specific_rule_whose_parent_is_not_a_sequence():
    text = recipe_text({"0x00280010": ["Rows", "US", "CONSERVER"]},
                       {"0x00080100": {"sequence": "0x00280010", "rule": "CONSERVER"}})
    problem = only(text)
    assert problem == Problem("error", "specific_rules['0x00080100']",
                              "parent Rows (0x00280010) is not a sequence (VR US): the rule can never apply",
                              "name the sequence (VR SQ) whose items hold the attribute")


def test_specific_rule_whose_parent_is_not_in_the_recipe():
    problem = only(recipe_text({}, {"0x00080100": {"sequence": "0x00540220", "rule": "CONSERVER"}}))
    assert problem == Problem(
        "warning", "specific_rules['0x00080100']",
        "parent sequence ViewCodeSequence (0x00540220) has no general rule: zero trust removes it, "
        "so this rule never applies",
        'add "0x00540220": ["ViewCodeSequence", "SQ", "CONSERVER"] to general_rules',
    )


def test_specific_rule_whose_parent_is_removed():
    text = recipe_text({"0x00540220": ["ViewCodeSequence", "SQ", "RETIRER"]},
                       {"0x00080100": [{"sequence": "0x00540220", "rule": "CONSERVER"}]})
    problem = only(text)
    assert problem.where == "specific_rules['0x00080100'][0]"
    assert problem.message == (
        "parent sequence ViewCodeSequence (0x00540220) is RETIRER: its items are gone, so this rule never applies")


def test_specific_rule_keeping_an_identifying_attribute_inside_a_kept_sequence():
    text = recipe_text({"0x00081072": ["OperatorIdentificationSequence", "SQ", "CONSERVER"]},
                       {"0x00080080": {"sequence": "0x00081072", "rule": "CONSERVER"}})
    messages = [p.message for p in problems_of(text)]
    assert ("keeps InstitutionName (0x00080080) inside OperatorIdentificationSequence (0x00081072), "
            "which the basic profile replaces (PSEUDONYMISER)") in messages


# -- risks -------------------------------------------------------------------------------------------------
def test_keeping_an_attribute_the_basic_profile_empties():
    problem = only(recipe_text({"0x00100010": ["PatientName", "PN", "CONSERVER"]}))
    assert problem == Problem("warning", "general_rules['0x00100010']",
                              "keeps PatientName (0x00100010), which the basic profile empties (EFFACER)",
                              "use EFFACER", refused_by_run=True)


def test_keeping_a_date_names_the_option_that_allows_it():
    problem = only(recipe_text({"0x00080020": ["StudyDate", "DA", "CONSERVER"]}))
    assert problem.message == "keeps StudyDate (0x00080020), which the basic profile empties (EFFACER)"
    assert problem.hint == ("use EFFACER; keep it only if your protocol allows the retain-full-dates option "
                            "and declare its code 113106 in deidentification_method_codes")


def test_keeping_a_date_is_fine_when_the_recipe_declares_the_option():
    text = recipe_text({"0x00080020": ["StudyDate", "DA", "CONSERVER"]},
                       deidentification_method_codes=["113100", "113106"])
    assert problems_of(text) == []


def test_keeping_a_private_tag_without_its_creator():
    problem = only(recipe_text({"0x00291010": ["", "OB", "CONSERVER"]}))
    assert problem == Problem(
        "warning", "general_rules['0x00291010']",
        "keeps private tag 0x00291010 without a private creator: private tags match only rules naming their "
        "creator, so nothing is kept (and any vendor's data could sit at that number)",
        'add {"creator": "..."} as 4th item and write the tag as 0xGGGGxxEE',
    )


def test_keeping_a_private_tag_with_its_creator_is_fine():
    text = recipe_text({"0x0019xx10": ["", "OB", "CONSERVER", {"creator": "SIEMENS MR HEADER"}]})
    assert problems_of(text) == []


def test_keeping_a_sequence_whose_items_identify():
    problem = only(recipe_text({"0x00101002": ["OtherPatientIDsSequence", "SQ", "CONSERVER"]}))
    assert problem.message == ("keeps sequence OtherPatientIDsSequence (0x00101002) whose items hold identifying "
                               "attributes (the basic profile removes it: RETIRER)")
    assert problem.hint == "use RETIRER, or keep only the item attributes you need with specific rules"


@pytest.mark.parametrize(
    ("key", "rule", "message"),
    [
        ("0x00280010", ["Rows", "US", "PSEUDONYMISER"],
         "PSEUDONYMISER on Rows (0x00280010) (VR US) has no pseudonym: the value becomes 0"),
        ("0x00189087", ["DiffusionBValue", "FD", "PSEUDONYMISER"],
         "PSEUDONYMISER on DiffusionBValue (0x00189087) (VR FD) has no pseudonym: the value becomes 0"),
        ("0x00281201", ["RedPaletteColorLookupTableData", "OW", "PSEUDONYMISER"],
         "PSEUDONYMISER on RedPaletteColorLookupTableData (0x00281201) (VR OW) has no pseudonym: "
         "the value becomes an empty value"),
        ("0x00540220", ["ViewCodeSequence", "SQ", "PSEUDONYMISER"],
         "PSEUDONYMISER on sequence ViewCodeSequence (0x00540220) means nothing for a sequence: the engine "
         "applies it to every attribute inside (values kept there become dummies)"),
        ("0x7fe00010", ["PixelData", "OW", "PSEUDONYMISER"],
         "PSEUDONYMISER on PixelData (0x7fe00010) is read as CONSERVER: pixels have no pseudonym; "
         "burned-in text is masked by the pixel stage"),
    ],
)

def test_pseudonymiser_where_it_means_nothing(key, rule, message):
    problem = only(recipe_text({key: rule}))
    assert (problem.severity, problem.message) == ("warning", message)


def test_pseudonymiser_where_the_standard_asks_for_a_dummy_is_fine():
    assert problems_of(recipe_text({"0x04000115": ["CertificateOfSigner", "OB", "PSEUDONYMISER"]})) == []


def test_file_meta_rules_are_ignored():
    problem = only(recipe_text({"0x00020010": ["TransferSyntaxUID", "UI", "CONSERVER"]}))
    assert problem.message == "rule for file meta TransferSyntaxUID (0x00020010) is ignored: the writer rebuilds group 0002"


# -- summary and the built-ins -------------------------------------------------------------------------
def test_summary_counts_rules_and_differences_from_basic():
    text = recipe_text({"0x00100010": ["PatientName", "PN", "PSEUDONYMISER"], "0x00280010": ["Rows", "US", "CONSERVER"]})
    summary = check_recipe_text(text, "t").summary
    assert summary.rules_per_action == {"PSEUDONYMISER": 1, "CONSERVER": 1}
    assert summary.examples[0] == "PatientName (0x00100010): basic EFFACER, this recipe PSEUDONYMISER"  # least strict first
    assert summary.less_strict == 1
    assert summary.differences == summary.less_strict + summary.stricter
    assert summary.stricter > 300  # everything else basic keeps or replaces, this recipe removes


@pytest.mark.parametrize("name", ["basic", "default", "mammography"])
def test_generated_builtins_are_clean(name):
    text = (REPO / "recipes" / f"{name}.json").read_text(encoding="utf-8")
    assert check_recipe_text(text, name).problems == []


def test_kskit_recipe_problems():
    text = (REPO / "recipes" / "kskit-mammography.json").read_text(encoding="utf-8")
    report = check_recipe_text(text, "kskit-mammography")
    assert report.errors == []
    messages = [p.message for p in report.warnings]
    assert "PSEUDONYMISER on PixelData (0x7fe00010) is read as CONSERVER: pixels have no pseudonym; " \
           "burned-in text is masked by the pixel stage" in messages
    assert "keeps PatientSex (0x00100040), which the basic profile empties (EFFACER)" in messages
    assert "VR 'LO' does not match tag 0x0040a078 (AuthorObserverSequence): pydicom's dictionary says 'SQ'" in messages
    assert report.exit_code(strict=False) == 0 and report.exit_code(strict=True) == 1


# -- the commands --------------------------------------------------------------------------------------
@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "r.json"
    path.write_text(text, encoding="utf-8")
    return str(path)


def test_check_recipe_clean_exits_0(runner, tmp_path):
    result = runner.invoke(check_recipe, [write(tmp_path, recipe_text({"0x00280010": ["Rows", "US", "CONSERVER"]})),
                                          "--strict"])
    assert result.exit_code == 0, result.output
    assert "t: 0 error(s), 0 warning(s)" in result.output  # the name inside the file


def test_check_recipe_warnings_exit_1_only_with_strict(runner, tmp_path):
    path = write(tmp_path, recipe_text({"0x00100010": ["PatientName", "PN", "CONSERVER"]}))
    assert runner.invoke(check_recipe, [path]).exit_code == 0
    result = runner.invoke(check_recipe, [path, "--strict"])
    assert result.exit_code == 1
    assert ("warning: general_rules['0x00100010']: keeps PatientName (0x00100010), which the basic profile "
            "empties (EFFACER)\n    fix: use EFFACER") in result.output


def test_check_recipe_errors_exit_2(runner, tmp_path):
    result = runner.invoke(check_recipe, [write(tmp_path, "{")])
    assert result.exit_code == 2
    assert "error: line 1 column 2: not valid JSON" in result.output


def test_check_recipe_accepts_a_builtin_name(runner):
    result = runner.invoke(check_recipe, ["basic", "--strict"])
    assert result.exit_code == 0, result.output
    assert "compared with the basic profile: 0 attributes treated differently" in result.output


def test_check_recipe_unknown_recipe_is_a_usage_error(runner):
    result = runner.invoke(check_recipe, ["no-such-recipe"])
    assert result.exit_code == 2
    assert "no built-in recipe named 'no-such-recipe'" in result.output


def test_recipe_list_shows_builtins_and_options(runner):
    result = runner.invoke(recipe, ["list"])
    assert result.exit_code == 0, result.output
    assert "mammography" in result.output and "kskit-mammography" in result.output
    assert "retain-modified-dates            113107" in result.output


def test_recipe_show(runner):
    result = runner.invoke(recipe, ["show", "mammography"])
    assert result.exit_code == 0, result.output
    assert "method codes: 113100, 113107, 113108" in result.output
    assert "0x00540220   ViewCodeSequence" in result.output


def test_recipe_export_with_option_loads_back(runner, tmp_path):
    result = runner.invoke(recipe, ["export", "basic", "--option", "retain-modified-dates"])
    assert result.exit_code == 0, result.output
    path = tmp_path / "my.json"
    path.write_text(result.output, encoding="utf-8")
    loaded = load_recipe(path)
    assert loaded.name == "basic+retain-modified-dates"
    assert loaded.method_codes == ["113100", "113107"]
    assert loaded.general_rule(0x00080020).action.value == "PSEUDONYMISER"
    assert check_recipe_text(result.output, "my").problems == []


def test_recipe_export_options_on_another_builtin(runner):
    result = runner.invoke(recipe, ["export", "mammography", "--option", "retain-full-dates"])
    assert result.exit_code == 0, result.output
    document = json.loads(result.output)
    assert document["deidentification_method_codes"] == ["113100", "113107", "113108", "113106"]
    assert document["general_rules"]["0x00080020"][2] == "CONSERVER"


def test_recipe_export_unknown_option_exits_2(runner):
    result = runner.invoke(recipe, ["export", "basic", "--option", "retain-everything"])
    assert result.exit_code == 2
    assert "retain-modified-dates" in result.output


def test_run_review_prints_the_warnings_without_the_basic_profile_comparison(capsys):
    """`deid run` prints check-recipe's warnings; the comparison with the basic profile is check-recipe's
    own output, so the run does not spend its start-up on it."""
    from deidcli.recipe.check import check_loaded_recipe, review_for_run
    from deidcli.recipe.load import load_recipe

    recipe = load_recipe("kskit-mammography")
    full = check_loaded_recipe(recipe)
    review = review_for_run(recipe, accept_risk=True)
    assert full.summary.compared and full.summary.differences > 0
    assert not review.summary.compared and review.summary.differences == 0
    assert [str(p) for p in review.problems] == [str(p) for p in full.problems] and review.warnings
    printed = capsys.readouterr().err
    assert all(problem.message in printed for problem in review.warnings)
