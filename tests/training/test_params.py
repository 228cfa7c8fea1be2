"""params.yaml -> typed dataclasses: unknown keys and wrong types are errors, not defaults."""

from __future__ import annotations

import pytest
import yaml

from training.params import EvaluateParams, TrainParams, from_dict, load_section


def test_repo_params_yaml_builds_every_training_section_with_the_files_values(repo_root):
    import dataclasses

    raw = yaml.safe_load((repo_root / "params.yaml").read_text())
    for section, cls in (("train", TrainParams), ("evaluate", EvaluateParams)):
        params = load_section(repo_root / "params.yaml", section, cls)
        # Every key of the file arrives with its value (none silently replaced by a default).
        for key, value in raw[section].items():
            got = getattr(params, key)
            if dataclasses.is_dataclass(got):  # a recipe: each of its keys likewise
                assert {k: getattr(got, k) for k in value} == value, f"{section}.{key}"
            else:
                assert got == value, f"{section}.{key}"
    train = load_section(repo_root / "params.yaml", "train", TrainParams)
    assert train.arch == "efficientnet_lite0", "the pretrained backbone is the default"
    assert train.recipe is train.efficientnet_lite0 and train.catsdogsnet.epochs > train.recipe.epochs


def test_unknown_key_is_an_error_that_names_it():
    with pytest.raises(ValueError, match="epocs"):
        from_dict("train", {"epocs": 3}, TrainParams)


def test_wrong_type_is_an_error_and_ints_are_accepted_as_floats():
    with pytest.raises(ValueError, match=r"train\.batch_size must be int"):
        from_dict("train", {"batch_size": "3"}, TrainParams)
    with pytest.raises(ValueError, match=r"train\.bf16 must be bool"):
        from_dict("train", {"bf16": 1}, TrainParams)
    assert from_dict("train", {"max_minutes": 1}, TrainParams).max_minutes == 1.0


@pytest.mark.parametrize(
    "raw, message",
    [
        ({"efficientnet_lite0": {"epochs": 0}}, r"train\.efficientnet_lite0\.epochs must be at least 1, got 0"),
        ({"max_minutes": 0}, r"train\.max_minutes must be positive, got 0\.0"),
        ({"arch": "resnet"}, r"train\.arch must be one of efficientnet_lite0, catsdogsnet"),
        ({"catsdogsnet": {"crop_size": 100}}, r"crop_size must be a multiple of 32"),
        ({"catsdogsnet": {"head_epochs": 5, "epochs": 3}}, r"head_epochs must be between 0 and epochs"),
        ({"neither_pet_rate": 0.7}, r"neither_pet_rate must be in \[0, 0\.5\)"),
        ({"catsdogsnet": {"lrr": 1}}, r"unknown key\(s\) in 'train\.catsdogsnet': lrr"),
    ],
)
def test_out_of_range_values_are_errors_with_a_sentence(raw, message):
    with pytest.raises(ValueError, match=message):
        from_dict("train", raw, TrainParams)


def test_a_recipe_section_overrides_only_the_keys_it_names():
    params = from_dict("train", {"arch": "catsdogsnet", "catsdogsnet": {"epochs": 3}}, TrainParams)
    assert params.recipe.epochs == 3 and params.recipe.mix_prob == TrainParams().catsdogsnet.mix_prob


def test_missing_section_and_missing_file_are_errors(tmp_path):
    path = tmp_path / "params.yaml"
    path.write_text("train:\n  epochs: 1\n")
    with pytest.raises(ValueError, match="no 'evaluate' section"):
        load_section(path, "evaluate", EvaluateParams)
    with pytest.raises(ValueError, match="not found"):
        load_section(tmp_path / "absent.yaml", "train", TrainParams)

