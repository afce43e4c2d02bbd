"""Acceptance tests run the installed ``charon`` command as a subprocess, on a fresh home."""

from __future__ import annotations

import os
import queue
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import pytest

CHARON = str(Path(sys.executable).parent / "charon")


@dataclass(frozen=True)
class Cli:
    home: Path

    @property
    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CHARON_")}
        env.update(CHARON_HOME=str(self.home), CHARON_LOG__FORMAT="json")
        return env

    def __call__(self, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CHARON, *args], env=self.env, capture_output=True, text=True, timeout=timeout,
            check=False,
        )


def first_line(process: subprocess.Popen[str], timeout: float) -> str:
    """A server's first stdout line, without hanging the test if it never comes."""
    lines: queue.Queue[str] = queue.Queue()
    assert process.stdout is not None
    stdout = process.stdout
    threading.Thread(target=lambda: lines.put(stdout.readline()), daemon=True).start()
    try:
        return lines.get(timeout=timeout)
    except queue.Empty:
        return ""


@pytest.fixture
def charon(tmp_path: Path) -> Cli:
    return Cli(tmp_path / "home")
