"""The golden path's daily top-artists workflow, ported from its tutorial's Luigi module.

Run it the Luigi way::

    charon run --module jobs.top_artists TopArtistsJob --date 2018-10-31 --top-n 100
"""

from __future__ import annotations

from orchestrator.tasks.params import DateParameter, IntParameter, Parameter
from orchestrator.tasks.targets import RegistryTarget, WarehouseTable
from orchestrator.tasks.task import BeamJobTask, ExternalTask, LookupDaily, Task

END_CONTENT_FACT = "di.golden.path.EndContentFactXT2"
# A toplist is read by people and loaded into a table: a million rows is far beyond
# either, and the pipeline holds the top N in memory.
MAX_TOP_N = 1_000_000


class TrackEntity(ExternalTask):
    """The day's table of tracks and their artists, made by another team."""

    date = DateParameter()

    def output(self) -> WarehouseTable:
        return WarehouseTable(
            project_id="scio-playground",
            dataset_id="di_golden_path",
            table_id=f"track_entity_{self.date:%Y%m%d}",
        )


class TopArtistsJob(BeamJobTask):
    """The day's top N artists by streams, as a registry revision and a warehouse table."""

    date = DateParameter()
    top_n = IntParameter(minimum=1, maximum=MAX_TOP_N)
    endpoint = Parameter[str]("di.golden.path.charon.top_artists")
    # None: the configured storage's output prefix (a local folder on the embedded
    # defaults); the tutorial's value is gs://scio-playground/di_golden_path/part3/<username>/.
    uri_prefix = Parameter[str | None](None, significant=False)

    pipeline = "jobs.top_artists.pipeline"
    project = "scio-playground"
    region = "europe-west1"
    autoscaling_algorithm = "THROUGHPUT_BASED"
    max_num_workers = 25
    staging_location = "gs://scio-playground/user/charon/dataflow/staging"
    temp_location = "gs://scio-playground/user/charon/dataflow/tmp"

    def args(self) -> list[str]:
        return [f"--topN={self.top_n}"]

    def requires(self) -> dict[str, Task]:
        return {
            "endContentFact": LookupDaily(endpoint=END_CONTENT_FACT, partition=self.date),
            "trackEntity": TrackEntity(date=self.date),
        }

    def output(self) -> dict[str, RegistryTarget | WarehouseTable]:
        return {
            "textOutput": RegistryTarget(
                endpoint=self.endpoint,
                partition=self.date.isoformat(),
                uri_prefix=self.uri_prefix,
            ),
            "bqOutput": WarehouseTable(
                project_id="scio-playground",
                dataset_id="charon",
                table_id=f"top_artists_daily{self.date:%Y%m%d}",
            ),
        }
