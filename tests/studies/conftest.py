import importlib.util
from pathlib import Path

import pytest

LLC_AT_SCALE = (
    Path(__file__).resolve().parents[2] / "studies" / "llc_at_scale" / "run.py"
)


@pytest.fixture
def llc_at_scale():
    """A fresh import of studies/llc_at_scale/run.py (tests patch its globals)."""
    spec = importlib.util.spec_from_file_location("llc_at_scale_run", LLC_AT_SCALE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
