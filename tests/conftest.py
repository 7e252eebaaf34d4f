import os
from pathlib import Path

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

PROJECT_ROOT = Path(__file__).resolve().parents[1]


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
