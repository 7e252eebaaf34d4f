import contextlib
import os
import subprocess
import sys
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# This project's own experiments and page generators (not in the package), run as scripts from
# there; their tests import them as those scripts do.
BENCHMARKS = PROJECT_ROOT / "benchmarks"
sys.path.insert(0, str(BENCHMARKS))
# The small model on joints, trained once: fast settings for tests that are not about the
# defaults (which have tests of their own), as benchmark fields and as command-line options.
SMALL = {"model": "attention_gcn", "streams": ("joint",), "refit": False}
FAST = ["--model", "attention_gcn", "--streams", "joint", "--no-refit"]


def real_data_root() -> Path | None:
    configured = os.environ.get("GCNPRUNE_DATA")
    root = Path(configured) if configured else PROJECT_ROOT.parent / "shared" / "data"
    return root if root.is_dir() else None


@pytest.fixture
def real_data() -> Path:
    """The real datasets folder; the test is skipped when it is absent."""
    root = real_data_root()
    if root is None:
        pytest.skip(
            "real data not found: set GCNPRUNE_DATA or place ../shared/data beside the repo"
        )
    return root


@contextlib.contextmanager
def held_by_another_process(folder):
    """`folder`'s output lock (keras_gcnprune.outputs) held by another process; yields its
    process id, and ends the process afterwards."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import sys, time\n"
         "from keras_gcnprune.outputs import OutputFolder\n"
         "with OutputFolder(sys.argv[1]).locked():\n    print('held', flush=True); time.sleep(60)",
         str(folder)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        yield holder.pid
    finally:
        holder.kill()
        holder.wait()
