"""Shared fixtures: where the real data and models live, and tiny random-weight models.

The shared data/models folders come from the environment (`.ci/run` points them at ../shared);
tests that need them skip with a clear message when they are absent.
"""
import os
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DATA_DIR = Path(os.environ.get("TINYST_DATA", REPO.parent / "shared" / "data"))
MODELS_DIR = Path(os.environ.get("TINYST_MODELS", REPO.parent / "shared" / "models"))


@pytest.fixture(scope="session")
def data_dir() -> Path:
    if not DATA_DIR.is_dir():
        pytest.skip(f"shared data not found at {DATA_DIR} (set TINYST_DATA)")
    return DATA_DIR


@pytest.fixture(scope="session")
def l3_path() -> Path:
    path = MODELS_DIR / "paraphrase-MiniLM-L3-v2"
    if not path.is_dir():
        pytest.skip(f"shared model not found at {path} (set TINYST_MODELS)")
    return path


def pytest_collection_modifyitems(config, items):
    """Slow real-model tests run in CI (CI=true) or with TINYST_SLOW=1; a plain `pytest` skips them."""
    if os.environ.get("CI") or os.environ.get("TINYST_SLOW") or config.getoption("-m"):
        return
    skip = pytest.mark.skip(reason="slow: set TINYST_SLOW=1 to run (CI runs it)")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
