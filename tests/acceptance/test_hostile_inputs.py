"""The hostile-input benchmark (bench/hostile_inputs.py) as a test: its whole corpus
against a live registry service and daemon, each a `charon` subprocess. Every case must
be handled (a clear 4xx JSON refusal, or the documented answer), both services must
still be up, and the registry must hold exactly what it held before the corpus."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent.parent


@pytest.mark.timeout(180)
def test_no_hostile_input_is_mishandled(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "bench.hostile_inputs", "--keep", str(tmp_path)],
        cwd=ROOT, capture_output=True, text=True, timeout=150, check=False,
    )
    report = result.stdout + result.stderr
    assert result.returncode == 0, report
    assert " tried, 0 mishandled " in result.stdout, report
    assert "afterwards:" not in result.stdout, report
