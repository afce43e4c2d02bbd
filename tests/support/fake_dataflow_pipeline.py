"""A fake "Dataflow pipeline" for tests: what Beam's submission does, as charon sees it.

``python -m tests.support.fake_dataflow_pipeline --runner=DataflowRunner --project=P --region=R
--jobName=N --textOutput=DIR [--bqOutput=SPEC --duckdbDir=DIR] [--blocking]`` writes the
outputs charon validates (a ``part`` file under --textOutput, the staging table in the
embedded warehouse) as the job would, creates the job on the fake Dataflow server
(tests/support/fake_dataflow.py; its root comes from ``CHARON_DATAFLOW__API_ROOT``, the
variable charon reads too), logs the line Beam's apiclient logs ("Created job with id:
[...]"), then exits, or with --blocking waits for the job to end as Beam does.

Test-only flags: ``--fakeQuiet`` leaves the id line out (charon must find the job by
name); ``--fakeExitCode=N`` fails before submitting.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import urllib.request
from collections.abc import Sequence
from pathlib import Path
from typing import Any

TERMINAL = ("JOB_STATE_DONE", "JOB_STATE_FAILED", "JOB_STATE_CANCELLED", "JOB_STATE_DRAINED",
            "JOB_STATE_UPDATED")
WAIT_SECONDS = 60.0  # a blocking submitter left behind by a test gives up on its own


def _call(method: str, url: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(url, data=data, method=method,  # noqa: S310  (a loopback test server)
                                     headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310  (as above)
        parsed: dict[str, Any] = json.loads(response.read())
        return parsed


def _write_outputs(args: argparse.Namespace) -> None:
    if args.textOutput:
        folder = Path(args.textOutput)
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "part").write_text("a1\tArtist One\t3\n")
    if args.bqOutput and args.duckdbDir:
        from orchestrator.stores.warehouse import duckdb_files  # noqa: PLC0415  (DuckDB only when asked for)
        from orchestrator.tablespec import TableSpec  # noqa: PLC0415  (as above)

        spec = TableSpec.parse(args.bqOutput)
        connection = duckdb_files.connect(Path(args.duckdbDir), spec.project)
        try:
            duckdb_files.replace_table(connection, spec,
                                       [("artist_gid", "STRING"), ("streams", "INT64")],
                                       [("a1", 3)])
        finally:
            connection.close()


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="fake_dataflow_pipeline")
    for flag in ("--runner", "--project", "--region", "--jobName", "--textOutput",
                 "--bqOutput", "--duckdbDir"):
        parser.add_argument(flag)
    parser.add_argument("--blocking", action="store_true")
    parser.add_argument("--fakeQuiet", action="store_true")
    parser.add_argument("--fakeExitCode", type=int, default=0)
    args, _ = parser.parse_known_args(argv)
    if args.fakeExitCode:
        print("error: the submission failed (as the test asked)", file=sys.stderr)
        return int(args.fakeExitCode)
    jobs = (f"{os.environ['CHARON_DATAFLOW__API_ROOT']}/v1b3/projects/{args.project}"
            f"/locations/{args.region}/jobs")
    # What the job writes in the cloud, written before charon can learn of the job (from
    # the line below or from the API): a submitter dies with the charon process that
    # started it, and the job must not.
    _write_outputs(args)
    job = _call("POST", jobs, {"name": args.jobName})
    if not args.fakeQuiet:
        print(f"INFO:apache_beam.runners.dataflow.internal.apiclient:"
              f"Created job with id: [{job['id']}]", file=sys.stderr, flush=True)
    if not args.blocking:
        return 0
    deadline = time.monotonic() + WAIT_SECONDS
    while time.monotonic() < deadline:
        state = _call("GET", f"{jobs}/{job['id']}").get("currentState")
        if state in TERMINAL:
            return 0 if state == "JOB_STATE_DONE" else 1
        time.sleep(0.05)
    return 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
