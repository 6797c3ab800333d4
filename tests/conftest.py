"""Shared fixtures: real datasets from ../shared/data (skipped when absent)."""

import importlib.util
from pathlib import Path

import pytest

SHARED_DATA = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shared_loader():
    spec = importlib.util.spec_from_file_location("_shared_load", SHARED_DATA / "load.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.load


@pytest.fixture(scope="session")
def load_shared():
    """``load_shared(name) -> (X, y)`` for the real datasets of ../shared/data.

    Skips the test when ../shared/data is not beside the project (it is the
    workplace's read-only data folder, not shipped with smote_ann).
    """
    if not (SHARED_DATA / "load.py").exists():
        pytest.skip(f"real datasets not available: {SHARED_DATA} does not exist")
    return _shared_loader()
