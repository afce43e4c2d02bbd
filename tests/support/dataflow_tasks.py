"""A task run on the fake Dataflow: the top-artists job's shape, the fake pipeline.

``charon run --module tests.support.dataflow_tasks FakeDataflowTopArtists --date D --top-n N``
with ``beam.runner = "DataflowRunner"`` and ``dataflow.api_root`` at a
tests/support/fake_dataflow.py server.
"""

from __future__ import annotations

from jobs.top_artists import TopArtistsJob


class FakeDataflowTopArtists(TopArtistsJob):
    """TopArtistsJob's requires(), output() and Dataflow options; the pipeline is a fake."""

    pipeline = "tests.support.fake_dataflow_pipeline"


class TimedFakeDataflowTopArtists(FakeDataflowTopArtists):
    """The same, with a ``worker_timeout`` of 2 seconds: a job still running then is
    cancelled."""

    variant_of = FakeDataflowTopArtists
    worker_timeout = 2
