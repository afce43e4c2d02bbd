"""``charon explain``: why a run has not fired, from the CLI."""

from __future__ import annotations

import pytest

from tests.acceptance.conftest import Cli

pytestmark = pytest.mark.slow

TASK = ("--module", "jobs.top_artists", "TopArtistsJob", "--date", "2018-10-31", "--top-n", "5")


def test_explain_names_missing_inputs_then_consumed_revisions(charon: Cli) -> None:
    missing = charon("explain", *TASK)
    assert missing.returncode == 0, missing.stderr
    assert "waiting for input: registry di.golden.path.EndContentFactXT2 2018-10-31" in (
        missing.stdout
    )
    assert "waiting for input: table scio-playground:di_golden_path.track_entity_20181031" in (
        missing.stdout
    )
    assert "TopArtistsJob(date=2018-10-31, top_n=5" in missing.stdout

    assert charon("sample-data", "--date", "2018-10-31", "--events", "500").returncode == 0
    ready = charon("explain", *TASK)
    assert "would run" in ready.stdout
    assert "consuming endContentFact=" in ready.stdout
    assert "no limit holds it" in ready.stdout
    assert charon("run", *TASK).returncode == 0

    done = charon("explain", *TASK)
    revision = charon("registry", "ls", "di.golden.path.EndContentFactXT2", "2018-10-31")
    revision_id = revision.stdout.splitlines()[1].split()[0]
    assert f"consumed endContentFact={revision_id}" in done.stdout
