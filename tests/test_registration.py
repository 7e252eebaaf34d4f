"""Importing the package alone is enough to load a saved run with Keras."""

import subprocess
import sys

from click.testing import CliRunner

from keras_gcnprune.cli.main import main

LOAD = """
import sys
import keras
import keras_gcnprune
model = keras.models.load_model(sys.argv[1])
print(type(model).__name__, model.output_shape[-1])
"""


def test_a_saved_run_loads_after_importing_the_package_alone(tmp_path):
    run = tmp_path / "run"
    trained = CliRunner().invoke(main, ["train", "--model", "attention_gcn", "--no-refit",
                                        "--epochs", "1", "--frames", "16", "--out",
                                        str(run)])
    assert trained.exit_code == 0, trained.output
    # A new interpreter: nothing imported but the package itself.
    loaded = subprocess.run([sys.executable, "-c", LOAD, str(run / "model.keras")],
                            capture_output=True, text=True)
    assert loaded.returncode == 0, loaded.stderr[-2000:]
    assert loaded.stdout.split() == ["Functional", "14"]
