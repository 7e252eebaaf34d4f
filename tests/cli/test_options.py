"""The command line's options come from the library: choice lists equal its constants, and
the pruning settings of `prune` and `bench accuracy` are generated from `PruningConfig`."""

import click
import pytest
from click.testing import CliRunner

from keras_gcnprune.bench.accuracy import BLOCK_BUDGETS, PRUNING_SETTINGS, AccuracyBench
from keras_gcnprune.bench.executors import EXECUTORS
from keras_gcnprune.cli.main import main
from keras_gcnprune.data.errors import ON_ERROR_CHOICES
from keras_gcnprune.export.convert import GPU_ENGINE_MODES
from keras_gcnprune.export.run import CALIBRATIONS
from keras_gcnprune.models import MODELS
from keras_gcnprune.pruning import METHODS, PRIORS, pruning_settings
from keras_gcnprune.pruning.callbacks import SCOPES, SUPERVISION
from keras_gcnprune.pruning.multirate import ALIGNMENT_SCOPES, SELF_DISTILLATION_TEACHERS

# Each choice option's name, and the library constant its choices must equal.
LIBRARY_CHOICES = {
    "method": METHODS, "scope": SCOPES, "supervision": tuple(SUPERVISION),
    "prior": tuple(PRIORS), "alignment_scope": ALIGNMENT_SCOPES,
    "self_distillation_teacher": SELF_DISTILLATION_TEACHERS, "model_name": tuple(MODELS),
    "on_error": ON_ERROR_CHOICES, "executor": EXECUTORS, "gpu_engine": GPU_ENGINE_MODES,
    "calibration": CALIBRATIONS, "block_budget": BLOCK_BUDGETS,
}


def commands(group: click.Group, path: str = "gcnprune"):
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            yield from commands(command, f"{path} {name}")
        else:
            yield f"{path} {name}", command


def test_every_choice_list_is_its_library_constant():
    checked = 0
    for path, command in commands(main):
        for parameter in command.params:
            if isinstance(parameter.type, click.Choice):
                assert parameter.name in LIBRARY_CHOICES, \
                    f"{path} --{parameter.name}: name its library constant in LIBRARY_CHOICES"
                assert tuple(parameter.type.choices) == tuple(LIBRARY_CHOICES[parameter.name]), \
                    path
                checked += 1
    assert checked >= 15


def _options(command: click.Command) -> dict[str, click.Parameter]:
    return {parameter.name: parameter for parameter in command.params
            if not getattr(parameter, "hidden", False)}


def test_prune_and_bench_spell_and_explain_every_shared_setting_alike():
    prune = _options(main.commands["prune"])
    bench = _options(main.commands["bench"].commands["accuracy"])
    shared = [*PRUNING_SETTINGS, "block_density", "ramp"]
    for name in shared:
        assert prune[name].opts == bench[name].opts, name
        explained = prune[name].help.split(" Default:")[0].split(" 'none':")[0]
        assert bench[name].help.startswith(explained), name
        assert bench[name].default is None  # the benchmark's own default fills it in
    assert prune["ramp"].opts == ["--ramp"] and "begin" not in prune and "end" not in prune


def test_every_pruning_setting_is_a_prune_option_with_the_librarys_default():
    prune = _options(main.commands["prune"])
    for setting in pruning_settings():
        if setting.name in ("begin", "end"):
            continue
        option = prune[setting.name]
        assert option.help.startswith(setting.metadata["help"]), setting.name
        if not setting.metadata.get("items"):
            assert option.default == setting.default, setting.name


def test_the_benchmarks_help_states_its_own_defaults():
    bench = _options(main.commands["bench"].commands["accuracy"])
    assert bench["block_density"].help.endswith(f"Default: {AccuracyBench.block_density}.")
    assert bench["ramp"].help.endswith("Default: 0,0.3.")
    assert bench["rates_per_step"].help.endswith("Default: all.")
    assert bench["consistent_extraction"].help.endswith("Default: --consistent-extraction.")


@pytest.mark.parametrize("command, old, new", [
    (["prune"], "--begin", "--ramp"),
    (["prune"], "--end", "--ramp"),
    (["train"], "--scaling", "--scale"),
])
def test_an_old_spelling_is_refused_naming_the_new_one(command, old, new):
    result = CliRunner().invoke(main, [*command, old, "0.2", "--epochs", "1"])
    assert result.exit_code == 2
    assert f"{old} is now {new}" in result.output
