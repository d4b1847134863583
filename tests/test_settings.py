"""Run options are defined once (deidcli.options) and checked before the first file is touched."""

from __future__ import annotations

import dataclasses
import inspect
import re

import pytest
from click.testing import CliRunner

import deidcli
from deidcli.cli import main
from deidcli.cli import run as run_command
from deidcli.errors import UsageError
from deidcli.options import OCR_ENGINES, OPTIONS, PROFILES, RUN_OPTIONS, OptionError, Surface, resolve_options
from deidcli.pipeline import Settings
from tests.conftest import KEY, ORG_ROOT


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
    from deidcli.recipe.profiles import PROFILES as BUILT_PROFILES

    assert set(OCR_ENGINES) == set(ENGINES)
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
