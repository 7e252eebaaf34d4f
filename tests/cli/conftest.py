"""What the command-line tests share: invoking `gcnprune`, a one-line refusal, a trained run."""

import pytest
from click.testing import CliRunner

from keras_gcnprune.cli.main import main
from tests.conftest import FAST

TRAIN = ["train", "--epochs", "1", "--frames", "16", *FAST]


def invoke(*arguments):
    return CliRunner().invoke(main, [str(a) for a in arguments])


def refused(result, *fragments, exit_code=1):
    """Asserts an expected error: one `Error:` line holding every fragment, no traceback."""
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert result.exit_code == exit_code and lines[-1].startswith("Error: "), result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[-1], lines[-1]


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A run trained for one epoch on the built-in gestures, shared by a test module."""
    out = tmp_path_factory.mktemp("cli") / "run"
    result = invoke(*TRAIN, "--out", out)
    assert result.exit_code == 0, result.output
    return out
