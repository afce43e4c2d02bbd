"""Session-scoped BigQuery and GCS emulators on free loopback ports, as subprocesses.

``bqemulator`` (REST + gRPC, backed by DuckDB) and ``gcp-storage-emulator`` come with
the ``test`` extra. Test modules import the fixtures they use from here.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import pytest

BIN = Path(sys.executable).parent
BUCKET = "charon-test"
PROJECTS = ("scio-playground", "other-project")
_START_SECONDS = 60.0


@dataclass(frozen=True)
class Emulator:
    host: str  # host:port
    process: subprocess.Popen[bytes]

    @property
    def url(self) -> str:
        return f"http://{self.host}"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def install_spatial_extension() -> None:
    """bqemulator loads DuckDB's spatial extension; install it from the wheel, offline.

    Otherwise DuckDB downloads it from extensions.duckdb.org, which this network
    (and many CI networks) cannot reach.
    """
    import duckdb_extension_spatial  # noqa: PLC0415  (only the emulator fixture needs it)

    package = Path(duckdb_extension_spatial.__file__).parent
    version = f"v{duckdb.__version__}"
    [source] = package.glob(f"extensions/{version}/spatial.duckdb_extension")
    target = Path.home() / ".duckdb" / "extensions" / version / _duckdb_platform()
    target.mkdir(parents=True, exist_ok=True)
    if not (target / source.name).is_file():
        # Copied under a name of its own, then renamed: another worker process of the
        # suite may be starting its emulator, which must never load half a file.
        partial = target / f"{source.name}.{os.getpid()}"
        shutil.copyfile(source, partial)
        partial.replace(target / source.name)


def _duckdb_platform() -> str:
    with duckdb.connect() as connection:
        row = connection.execute("PRAGMA platform").fetchone()
    return str(row[0]) if row else "linux_amd64"


def _wait_until_answering(emulator: Emulator, path: str, log: Path) -> None:
    deadline = time.monotonic() + _START_SECONDS
    while time.monotonic() < deadline:
        if emulator.process.poll() is not None:
            raise RuntimeError(f"emulator exited early:\n{log.read_text()[-3000:]}")
        try:
            with urllib.request.urlopen(emulator.url + path, timeout=2):  # noqa: S310  (loopback)
                return
        except (urllib.error.URLError, OSError):
            time.sleep(0.2)
    raise RuntimeError(f"emulator did not answer within {_START_SECONDS}s:\n{log.read_text()}")


def _start(argv: list[str], port: int, probe: str, log: Path) -> Iterator[Emulator]:
    with log.open("wb") as output:
        process = subprocess.Popen(argv, stdout=output, stderr=subprocess.STDOUT)
    emulator = Emulator(f"127.0.0.1:{port}", process)
    try:
        _wait_until_answering(emulator, probe, log)
        yield emulator
    finally:
        process.terminate()
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


@pytest.fixture(scope="session")
def bigquery_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    yield from start_bigquery(tmp_path_factory.mktemp("bqemulator"))


def start_bigquery(folder: Path) -> Iterator[Emulator]:
    """A bqemulator of its own (a test that pauses it shares it with no other), its log
    in ``folder``; stopped when the generator is closed."""
    install_spatial_extension()
    port = free_port()
    argv = [
        str(BIN / "bqemulator"), "start", "--rest-host", "127.0.0.1", "--rest-port", str(port),
        "--grpc-host", "127.0.0.1", "--grpc-port", "0", "--ephemeral",
        "--project", PROJECTS[0], "--log-level", "warning",
    ]
    yield from _start(argv, port, f"/bigquery/v2/projects/{PROJECTS[0]}/datasets",
                      folder / "bqemulator.log")


@pytest.fixture(scope="session")
def gcs_emulator(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Emulator]:
    port = free_port()
    argv = [
        str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port),
        "--in-memory", "--default-bucket", BUCKET, "-q",
    ]
    log = tmp_path_factory.mktemp("gcs-emulator") / "gcs-emulator.log"
    yield from _start(argv, port, f"/storage/v1/b/{BUCKET}", log)


def clear_bigquery(emulator: Emulator) -> None:
    """Delete every dataset and job of the test projects, so each test starts empty.

    Jobs too: the contract suites reuse job keys ("job-1") from test to test, and a
    move's job id is derived from its key.
    """
    for project in PROJECTS:
        root = f"{emulator.url}/bigquery/v2/projects/{project}"
        for dataset in _get(f"{root}/datasets?all=true").get("datasets", []):
            name = dataset["datasetReference"]["datasetId"]
            _delete(f"{root}/datasets/{name}?deleteContents=true")
        for job in _get(f"{root}/jobs?allUsers=true&maxResults=100000").get("jobs", []):
            _delete(f"{root}/jobs/{job['jobReference']['jobId']}/delete")


def _get(url: str) -> dict[str, Any]:
    with urllib.request.urlopen(url, timeout=10) as response:  # noqa: S310  (loopback)
        parsed: dict[str, Any] = json.load(response)
    return parsed


def _delete(url: str) -> None:
    request = urllib.request.Request(url, method="DELETE")  # noqa: S310  (loopback)
    with urllib.request.urlopen(request, timeout=10):  # noqa: S310  (loopback)
        pass


def emulator_environment(bigquery: Emulator, gcs: Emulator) -> dict[str, str]:
    """The variables gcloud-aio, google-cloud-storage and the job read to find them."""
    return {
        **os.environ,
        "BIGQUERY_EMULATOR_HOST": bigquery.host,
        "STORAGE_EMULATOR_HOST": gcs.url,
    }


def charon_on_emulators(home: Path, bigquery: Emulator, gcs: Emulator) -> dict[str, str]:
    """The environment of a ``charon`` command whose warehouse is BigQuery and whose
    storage is GCS, both the emulators, its home ``home``, logging JSON."""
    env = {k: v for k, v in emulator_environment(bigquery, gcs).items()
           if not k.startswith("CHARON_")}
    env.update(
        CHARON_HOME=str(home), CHARON_LOG__FORMAT="json",
        CHARON_WAREHOUSE__KIND="bigquery", CHARON_WAREHOUSE__PROJECT="scio-playground",
        CHARON_STORAGE__KIND="gcs", CHARON_STORAGE__OUTPUT_PREFIX=f"gs://{BUCKET}/outputs",
    )
    return env
