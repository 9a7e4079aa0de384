"""The template's own Python keeps the generated site's ruff rules (see ruff.toml)."""

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
RUFF = Path(sys.executable).parent / "ruff"
TEMPLATE_PYTHON = ["local_extensions.py", "hooks", "tests", "benchmarks"]


@pytest.mark.parametrize("command", [["check"], ["format", "--check"]], ids=" ".join)
def test_template_python_passes_ruff(command):
    result = subprocess.run(
        [RUFF, *command, "--no-cache", *TEMPLATE_PYTHON], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
