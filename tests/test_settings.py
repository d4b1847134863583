"""Run options are defined once (deidcli.options) and checked before the first file is touched."""

from __future__ import annotations

import dataclasses
import inspect
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner
from pydicom import dcmread

import deidcli
from deidcli.cli import main
from deidcli.cli import run as run_command
from deidcli.errors import KeyFileError, RecipeError, UsageError
from deidcli.options import OCR_ENGINES, OPTIONS, PROFILES, RUN_OPTIONS, OptionError, Surface, resolve_options
from deidcli.pipeline import Settings
from tests.conftest import KEY, ORG_ROOT, write_planted


def test_every_cli_option_comes_from_the_one_definition_with_the_same_default():
    params = {param.name: param for param in run_command.params if param.name not in ("in_dir", "out_dir")}
    assert set(params) == set(OPTIONS)
    for option in RUN_OPTIONS:
        param = params[option.name]
        assert option.flag in param.opts
        assert param.default == option.default_for(Surface.CLI), option.name
        if option.choices:
            assert tuple(param.type.choices) == option.choices


def test_settings_defaults_are_the_option_defaults():
    fields = {field.name: field for field in dataclasses.fields(Settings)}
    for name, field_name in (("ocr", "ocr"), ("ocr_engine", "ocr_engine"), ("file_timeout_s", "file_timeout_s"),
                             ("accept_burned_in_risk", "accept_burned_in_risk"),
                             ("ocr_skip_modalities", "ocr_skip_modalities")):
        assert fields[field_name].default == OPTIONS[name].default


def test_option_choices_match_what_the_code_implements():
    from deidcli.ocr.engines import ENGINES
    from deidcli.prepare import ENGINE_MODULES
    from deidcli.recipe.profiles import PROFILES as BUILT_PROFILES

    assert set(OCR_ENGINES) == set(ENGINES) == set(ENGINE_MODULES)
    assert PROFILES == BUILT_PROFILES


def test_python_run_signature_lists_every_option_with_its_default():
    parameters = inspect.signature(deidcli.run).parameters
    for option in RUN_OPTIONS:
        assert parameters[option.name].default == option.default


def test_run_help_is_full_sentences_naming_the_cli_options():
    result = CliRunner().invoke(main, ["run", "--help"], terminal_width=200)
    assert result.exit_code == 0
    for option in RUN_OPTIONS:
        help_text = option.help_for(Surface.CLI)
        assert help_text[0].isupper() and help_text.rstrip().endswith("."), option.name
        assert "{" not in help_text
        assert option.flag in result.output
    assert "needs --region-rules or --accept-burned-in-risk" in re.sub(r"-\s+", "-", " ".join(result.output.split()))
    assert "needs region_rules or accept_burned_in_risk" in OPTIONS["ocr"].help_for(Surface.API)


def test_unknown_api_option_is_refused_with_the_closest_name():
    with pytest.raises(UsageError, match="did you mean ocr_engine"):
        resolve_options({"ocr_engin": "rapidocr"})


def test_option_errors_name_the_api_parameter_or_the_cli_flag(tmp_path):
    (tmp_path / "in").mkdir()
    with pytest.raises(OptionError) as caught:
        deidcli.run(tmp_path / "in", tmp_path / "out", key=KEY, org_root=ORG_ROOT, ocr="never")
    assert "ocr never needs region_rules FILE or an explicit accept_burned_in_risk" in str(caught.value)
    assert "--" not in str(caught.value)
    assert "--ocr never needs --region-rules" in caught.value.render(Surface.CLI)


@pytest.mark.parametrize(("name", "value"), [("workers", 0), ("ocr", "sometimes"), ("ocr_engine", "tesseract"),
                                             ("file_timeout_s", -1), ("options", ["retain-everything"]),
                                             ("org_root", "1.02.3")])
def test_bad_option_values_are_usage_errors_naming_the_parameter(name, value):
    with pytest.raises(OptionError, match=name):
        resolve_options({name: value})


# -- every setting checked before the first file --------------------------------------------------------
@pytest.fixture
def one_file(tmp_path: Path) -> Path:
    folder = tmp_path / "in"
    write_planted(folder / "a.dcm")
    return folder


def test_unknown_ocr_engine_through_the_api_is_a_usage_error_not_a_quarantine(one_file, tmp_path):
    with pytest.raises(OptionError, match="ocr_engine must be one of rapidocr, easyocr, not 'tesseract'"):
        deidcli.run(one_file, tmp_path / "out", key=KEY, ocr_engine="tesseract")
    assert not (tmp_path / "out").exists()


def test_an_engine_that_is_not_installed_is_a_usage_error(one_file, tmp_path, monkeypatch):
    from deidcli import prepare

    monkeypatch.setitem(prepare.ENGINE_MODULES, "easyocr", (("no_such_module_for_deidcli_tests",), "pip install x"))
    with pytest.raises(OptionError, match=r"needs the Python package\(s\) no_such_module_for_deidcli_tests"):
        deidcli.run(one_file, tmp_path / "out", key=KEY, ocr_engine="easyocr")
    assert not (tmp_path / "out").exists()


def test_recipe_word_list_typo_through_the_api_is_refused_with_a_suggestion(one_file, tmp_path):
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"authorised_words": ["mamography"], "general_rules": {}}))
    with pytest.raises(RecipeError, match="did you mean 'mammography'"):
        deidcli.run(one_file, tmp_path / "out", key=KEY, recipe=recipe, ocr="always")
    assert not (tmp_path / "out").exists() and not (tmp_path / "out.private").exists()


def test_a_key_given_as_bytes_that_is_too_short_is_refused(one_file, tmp_path):
    with pytest.raises(KeyFileError, match="at least 16"):
        deidcli.run(one_file, tmp_path / "out", key=b"short", ocr="never", accept_burned_in_risk=True)
    assert not (tmp_path / "out").exists()


# -- recipe settings: honoured (given > recipe > default) or refused ---------------------------------------
def _recipe_with(tmp_path: Path, **settings) -> Path:
    path = tmp_path / "with-settings.json"
    document = json.loads(deidcli.load_recipe("default").source_text)
    document.update(settings)
    path.write_text(json.dumps(document))
    return path


def test_org_root_in_a_recipe_file_is_honoured(one_file, tmp_path):
    recipe = _recipe_with(tmp_path, org_root=ORG_ROOT)
    deidcli.run(one_file, tmp_path / "out", key=KEY, recipe=recipe, ocr="never", accept_burned_in_risk=True)
    written = dcmread(next((tmp_path / "out").rglob("*.dcm")))
    assert written.StudyInstanceUID.startswith(ORG_ROOT + ".")
    assert written.SOPInstanceUID.startswith(ORG_ROOT + ".")


def test_org_root_given_to_the_run_wins_over_the_recipe(one_file, tmp_path):
    recipe = _recipe_with(tmp_path, org_root="1.2.3.4")
    deidcli.run(one_file, tmp_path / "out", key=KEY, recipe=recipe, org_root=ORG_ROOT, ocr="never",
                accept_burned_in_risk=True)
    assert dcmread(next((tmp_path / "out").rglob("*.dcm"))).StudyInstanceUID.startswith(ORG_ROOT + ".")


@pytest.mark.parametrize(("settings", "message"), [({"org_root": "1.02.3"}, "is not a UID root"),
                                                   ({"orgroot": ORG_ROOT}, "unknown setting"),
                                                   ({"authorised_words": "mammography"}, "must be a list")])
def test_a_recipe_setting_that_cannot_be_honoured_is_refused(one_file, tmp_path, settings, message):
    recipe = _recipe_with(tmp_path, **settings)
    with pytest.raises(RecipeError, match=message):
        deidcli.run(one_file, tmp_path / "out", key=KEY, recipe=recipe, ocr="never", accept_burned_in_risk=True)
    assert not (tmp_path / "out").exists()


def test_options_a_recipe_may_set_exist_on_recipe_and_default_to_none():
    recipe_fields = {field.name for field in dataclasses.fields(deidcli.Recipe)}
    settable = [option for option in RUN_OPTIONS if option.in_recipe]
    assert settable
    for option in settable:
        assert option.default is None and option.name in recipe_fields, option.name
