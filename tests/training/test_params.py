"""params.yaml -> typed dataclasses: unknown keys and wrong types are errors, not defaults."""

from __future__ import annotations

import pytest
import yaml

from training.params import EvaluateParams, TrainParams, from_dict, load_section


def test_repo_params_yaml_builds_every_training_section_with_the_files_values(repo_root):
    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    for section, cls in (("train", TrainParams), ("evaluate", EvaluateParams)):
        params = load_section(repo_root / "params.yaml", section, cls)
        # Every key of the file arrives with its value (none silently replaced by a default).
        assert {key: getattr(params, key) for key in raw[section]} == raw[section], section


def test_unknown_key_is_an_error_that_names_it():
    with pytest.raises(ValueError, match="epocs"):
        from_dict("train", {"epocs": 3}, TrainParams)


def test_wrong_type_is_an_error_and_ints_are_accepted_as_floats():
    with pytest.raises(ValueError, match=r"train\.epochs must be int"):
        from_dict("train", {"epochs": "3"}, TrainParams)
    with pytest.raises(ValueError, match=r"train\.bf16 must be bool"):
        from_dict("train", {"bf16": 1}, TrainParams)
    assert from_dict("train", {"lr": 1}, TrainParams).lr == 1.0


def test_missing_section_and_missing_file_are_errors(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 1\n")
    with pytest.raises(ValueError, match="no 'evaluate' section"):
        load_section(path, "evaluate", EvaluateParams)
    with pytest.raises(ValueError, match="not found"):
        load_section(tmp_path / "absent.yaml", "train", TrainParams)

