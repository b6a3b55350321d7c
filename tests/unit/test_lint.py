"""ruff is clean with the rule set in pyproject.toml ([tool.ruff])."""
import importlib.util
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_ruff_check_is_clean():
    if importlib.util.find_spec("ruff") is None:
        pytest.fail("ruff is not installed in this environment: it is in the `test` extra; "
                    "install with `pip install -c constraints.txt -e '.[test]'` "
                    "(hack/lib.sh's ensure_venv does)")
    proc = subprocess.run([sys.executable, "-m", "ruff", "check", "--no-cache",
                           "--output-format", "concise", "."],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, (f"ruff check . (fix with `python -m ruff check --fix .` "
                                  f"where it says [*]):\n{proc.stdout}{proc.stderr}")
