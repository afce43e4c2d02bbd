"""A command that needs an optional extra which is not installed: exit 2, one line that
names the extra, no traceback.

The extra is made missing by running the CLI behind an import hook that refuses its
modules, as an install without it would.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.acceptance.conftest import Cli

pytestmark = pytest.mark.slow

WITHOUT_GCLOUD = """
import sys
from importlib.abc import MetaPathFinder


class NotInstalled(MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "gcloud":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


sys.meta_path.insert(0, NotInstalled())
from orchestrator.cli.main import main

main()
"""
TASK = ("--module", "jobs.top_artists", "TopArtistsJob", "--date", "2018-10-31",
        "--top-n", "5", "--local-scheduler")


@pytest.mark.parametrize("environ", [
    {"CHARON_STORAGE__KIND": "gcs", "CHARON_STORAGE__OUTPUT_PREFIX": "gs://bucket/out"},
    {"CHARON_WAREHOUSE__KIND": "bigquery", "CHARON_WAREHOUSE__PROJECT": "project"},
    {"CHARON_BEAM__RUNNER": "DataflowRunner", "CHARON_BEAM__PROJECT": "project",
     "CHARON_BEAM__REGION": "europe-west1"},
], ids=["gcs", "bigquery", "dataflow"])
def test_google_cloud_without_the_gcp_extra_says_to_install_it(
    charon: Cli, environ: dict[str, str]
) -> None:
    env = {**charon.env, **environ}
    result = subprocess.run([sys.executable, "-c", WITHOUT_GCLOUD, "run", *TASK], env=env,
                            capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 2, result.stderr
    assert "Traceback" not in result.stderr
    [line] = result.stderr.splitlines()
    assert line == "error: gcloud is not installed: pip install 'charon[gcp]'"
