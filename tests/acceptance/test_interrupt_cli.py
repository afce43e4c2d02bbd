"""Ctrl-C on a one-shot command: one line and the shells' code for it, no traceback."""

from __future__ import annotations

import signal
import subprocess
import time

from tests.acceptance.conftest import CHARON, Cli


def test_ctrl_c_stops_a_command_with_one_line(charon: Cli) -> None:
    # Big enough to be still writing when the signal comes.
    process = subprocess.Popen(
        [CHARON, "sample-data", "--date", "2018-10-31", "--events", "3000000"],
        env=charon.env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    time.sleep(1)
    process.send_signal(signal.SIGINT)
    _, stderr = process.communicate(timeout=120)
    assert process.returncode == 130
    assert stderr.strip().splitlines()[-1] == "interrupted"
    assert "Traceback" not in stderr
