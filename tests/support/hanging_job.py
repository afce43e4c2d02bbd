"""A job that never ends of itself: ``python -m tests.support.hanging_job [--flags]``.

It writes its pid to the file ``HANGING_JOB_PID`` names, then sleeps; the flags the
Beam launcher passes are ignored.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

if __name__ == "__main__":
    Path(os.environ["HANGING_JOB_PID"]).write_text(str(os.getpid()))
    time.sleep(3600)
