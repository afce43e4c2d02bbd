"""A command that needs an optional extra which is not installed: exit 2, one line that
names the extra, no traceback.

The extra is made missing by running the CLI with its packages marked as not importable
(``None`` in ``sys.modules``), as an install without it would have them.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.acceptance.conftest import Cli

pytestmark = pytest.mark.slow

WITHOUT = ("import sys; sys.modules.update(dict.fromkeys(sys.argv.pop(1).split(',')));"
           "from orchestrator.cli.main import main; main()")
TOP_ARTISTS = ("--module", "jobs.top_artists", "TopArtistsJob", "--date", "2018-10-31",
               "--top-n", "5", "--local-scheduler")


def refused(charon: Cli, missing: str, argv: tuple[str, ...], environ: dict[str, str]) -> str:
    """The one line of a ``charon`` that runs without the packages ``missing``."""
    result = subprocess.run([sys.executable, "-c", WITHOUT, missing, *argv],
                            env={**charon.env, **environ}, capture_output=True, text=True,
                            timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    return line


@pytest.mark.parametrize("environ", [
    {"CHARON_STORAGE__KIND": "gcs", "CHARON_STORAGE__OUTPUT_PREFIX": "gs://bucket/out"},
    {"CHARON_WAREHOUSE__KIND": "bigquery", "CHARON_WAREHOUSE__PROJECT": "project"},
    {"CHARON_BEAM__RUNNER": "DataflowRunner", "CHARON_BEAM__PROJECT": "project",
     "CHARON_BEAM__REGION": "europe-west1"},
], ids=["gcs", "bigquery", "dataflow"])
def test_google_cloud_without_the_gcp_extra_says_to_install_it(
    charon: Cli, environ: dict[str, str]
) -> None:
    line = refused(charon, "gcloud", ("run", *TOP_ARTISTS), environ)
    assert line == "error: gcloud is not installed: pip install 'charon[gcp]'"


def test_a_spark_task_without_the_spark_extra_says_to_install_it(charon: Cli) -> None:
    argv = ("run", "--module", "jobs.luigi_top_artists", "Top10Artists", "--date-interval",
            "2012-07", "--use-spark", "--local-scheduler")
    # No spark-submit on the PATH either: the venv's bin holds pyspark's.
    line = refused(charon, "pyspark", argv, {"PATH": "/usr/bin:/bin"})
    assert line == "error: spark-submit not found: pip install 'charon[spark]' (needs Java 17+)"


def test_lineage_without_the_openlineage_extra_says_to_install_it(charon: Cli) -> None:
    line = refused(charon, "openlineage", ("run", *TOP_ARTISTS),
                   {"CHARON_LINEAGE__KIND": "console"})
    assert line == "error: openlineage is not installed: pip install 'charon[openlineage]'"
