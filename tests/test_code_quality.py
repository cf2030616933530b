"""ruff (pycodestyle, pyflakes, import order, bugbear, pyupgrade, simplify; 120 columns) and mypy
(check_untyped_defs) on dropcli/, run with the suite so that CI's one command (`uv run pytest`) checks them
too. Configured in pyproject.toml."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_ruff_finds_nothing():
    result = run("ruff", "check", "dropcli", "tests", "bench", "docs")
    assert result.returncode == 0, result.stdout + result.stderr


def test_mypy_finds_nothing():
    result = run("mypy", "dropcli")
    assert result.returncode == 0, result.stdout + result.stderr
