"""Typed settings: a --config file's sections, derived defaults, and their errors."""

from __future__ import annotations

import re

import pytest

from controllers import make_controller
from nas.config import SEARCH_TEACHER, ChildConfig, SearchConfig
from nas.config_file import load_config_file
from nas.reward import RewardConfig
from nas.search import build_parser, config_from_args
from search_spaces.space import SearchSpace


def test_defaults_are_stated_once_and_derived():
    config = SearchConfig()
    assert config.child_config() == ChildConfig()
    assert config.reward_config() == RewardConfig()
    assert config.teacher_config() == SEARCH_TEACHER


def test_a_ppo_section_reaches_the_controller(tmp_path):
    path = tmp_path / "search.yaml"
    path.write_text("budget: 3cpu-minutes\nppo:\n  batch-size: 4\n  clip_coef: 0.1\n")
    config = config_from_args(build_parser().parse_args(["--config", str(path)]))
    assert config.ppo == {"batch_size": 4, "clip_coef": 0.1}
    assert config.to_dict()["ppo"] == {"batch_size": 4, "clip_coef": 0.1}  # -> search.json
    ppo = make_controller("ppo", SearchSpace(4), seed=0, **config.ppo)
    assert ppo.config.batch_size == 4 and ppo.config.clip_coef == 0.1


@pytest.mark.parametrize(
    "data, message",
    [
        ({"ppo": {"batch": 4}}, "unknown ppo settings ['batch']"),
        ({"controller": "random", "ppo": {"batch_size": 4}}, "controller is 'random'"),
        ({"child_step": 5}, "unknown search settings ['child_step']"),
    ],
)
def test_bad_settings_name_the_problem(data, message):
    with pytest.raises(ValueError, match=None) as info:
        SearchConfig.from_dict(data)
    assert message in str(info.value)


def test_config_file_must_be_a_mapping(tmp_path):
    path = tmp_path / "bad.json"
    path.write_text("[1, 2]")
    with pytest.raises(ValueError, match="mapping"):
        load_config_file(path)


def test_outputs_narrow_the_search_space_from_the_command_line():
    config = config_from_args(build_parser().parse_args(["--outputs", "residual, sum"]))
    assert config.output_modes() == ("sum", "residual")
    assert config.search_space().decisions[-1].choices == ("sum", "residual")
    assert SearchConfig().output_modes() == ("sum", "concat", "residual")
    assert SearchConfig.from_saved({}).outputs == ""  # a search.json from before the setting


def test_outputs_given_as_a_list_in_a_config_file_are_one_clear_error():
    from nas.search import SearchError, validate

    with pytest.raises(SearchError, match="one comma-separated string"):
        validate(SearchConfig(outputs=["residual"]))


def test_one_spelling_per_output_set_so_a_resume_compares_sets():
    assert SearchConfig(outputs=" residual , sum").outputs == "sum,residual"
    assert SearchConfig(outputs="residual,sum,concat").outputs == ""  # all: as before the setting
    assert SearchConfig(outputs="residul").outputs == "residul"  # kept for validate to name


def test_a_resume_refuses_other_outputs(tmp_path):
    from nas.checkpoint import json_text
    from nas.search import SearchError, resumed_config

    saved = SearchConfig().to_dict()
    del saved["outputs"]  # a search.json from before the setting
    (tmp_path / "search.json").write_text(json_text(saved))
    parse = build_parser().parse_args
    assert resumed_config(parse(["--resume", "--out", str(tmp_path)])).outputs == ""
    same = ["--resume", "--out", str(tmp_path), "--outputs", "concat,sum,residual"]
    assert resumed_config(parse(same)).outputs == ""
    with pytest.raises(SearchError, match="--outputs"):
        resumed_config(parse(["--resume", "--out", str(tmp_path), "--outputs", "residual"]))


@pytest.mark.parametrize(
    "teacher, message",
    [
        ("corrupt", "is not a readable safetensors file"),
        (
            "3 classes",
            "2 have another shape (head.classifier.bias: (3,) in the file, (5,) expected",
        ),
        ("fits", None),
    ],
)
def test_a_teacher_file_is_checked_before_any_data_is_loaded(teacher, message, tmp_path):
    from nas.checkpoint import save_weights
    from nas.models.static import StaticSegNet
    from nas.search import SearchError, validate

    path = tmp_path / "teacher.safetensors"
    if teacher == "corrupt":  # a download cut short
        save_weights(StaticSegNet(5, SearchConfig().net_config()), path)
        path.write_bytes(path.read_bytes()[:1000])
    else:
        classes = 3 if teacher == "3 classes" else 5
        save_weights(StaticSegNet(classes, SearchConfig().net_config()), path)
    config = SearchConfig(teacher=str(path))
    if message is None:
        assert validate(config).seconds > 0
    else:
        with pytest.raises(SearchError, match=re.escape(message)):
            validate(config)
