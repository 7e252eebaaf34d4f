from dataclasses import replace

from dense_quality import RECIPES, base_config, parse_arguments, parse_recipes, recipe_config

from keras_gcnprune.training import TrainConfig


def test_the_default_recipe_trains_with_the_package_defaults():
    config = recipe_config(RECIPES["default"], base_config("msr", "cross_subject", 0,
                                                           parse_arguments([])))
    expected = replace(TrainConfig(), dataset="msr", protocol="cross_subject", on_error="skip")
    assert config == expected


def test_a_recipe_changes_only_what_it_names():
    args = parse_arguments(["--frames", "16"])
    base = base_config("sbu", "fold1", 2, args)
    joint = recipe_config(RECIPES["joint"], base)
    assert joint.preprocessing == replace(base.preprocessing, streams=("joint",))
    assert joint.preprocessing.frames == 16 and joint.seed == 2
    assert replace(joint, preprocessing=base.preprocessing) == base


def test_the_paper_recipe_is_the_papers_input_and_augmented_adds_the_default_augmentation():
    base = base_config("sbu", "fold1", 0, parse_arguments([]))
    paper = recipe_config(parse_recipes("paper")["paper"], base)
    assert paper.preprocessing.streams == ("joint",) and paper.augmentation is None
    augmented = recipe_config(parse_recipes("paper+augmented")["paper+augmented"], base)
    assert augmented.augmentation == TrainConfig().augmentation
    assert replace(augmented, augmentation=None) == paper
