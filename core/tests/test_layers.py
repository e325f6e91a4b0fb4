"""Issue 13.1: the apps import one way only. `make lint` runs the same check; this keeps it in the suite."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_no_app_imports_an_app_above_it():
    """import-linter's layers contract (pyproject.toml): config, portal, integrations, compliance,
    marketplace, billing, lenders, leads, core. Before issue 13 every app imported every other."""
    lint = shutil.which("lint-imports", path=str(Path(sys.executable).parent))
    if lint is None:
        pytest.skip("import-linter is not installed (requirements-dev.txt)")
    result = subprocess.run([lint], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-3000:]
    assert "0 broken" in result.stdout
