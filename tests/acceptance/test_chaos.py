"""The chaos benchmark's short form: the whole scenario of bench/chaos.py, smaller.

Three daemon replicas, the registry service and PostgreSQL, 40 partitions of the
small job task and one top-artists day, under about 35 s of faults (replicas
SIGKILLed and paused past their lease, one of them mid-publication, the registry
service SIGKILLed twice, PostgreSQL connections cut), and a backfill of 12 more days
started through a replica's API. Every must-be-zero figure must be zero, which
includes every partition being up to date and the backfill done.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.chaos import ChaosParams, report, run_chaos

pytestmark = pytest.mark.slow

SHORT = ChaosParams(partitions=40, top_days=1, fault_seconds=35, replicas=3, seed=7,
                    settle_seconds=90, backfill_days=12)


@pytest.mark.timeout(300)
async def test_every_partition_published_once_per_input_state_under_faults(
    tmp_path: Path,
) -> None:
    result = await run_chaos(SHORT, tmp_path)
    summary = report(SHORT, result)
    print(summary)
    wrong = {name: value for name, value in result.must_be_zero.items() if value}
    assert not wrong, summary
    assert result.must_be_zero["partitions not up to date"] == 0
    assert result.settle_seconds is not None
