"""The database sensor: has this table been loaded by this task (Luigi's marker table)."""

from __future__ import annotations

from collections.abc import Mapping

from orchestrator.errors import ConfigError
from orchestrator.model import InputRevision, micros
from orchestrator.stores.database.base import Database
from orchestrator.tasks.targets import PostgresTable

NO_DATABASE = (
    "{target} needs a PostgreSQL database: set postgres.dsn in the config"
    " or CHARON_POSTGRES__DSN in the environment"
)


def require(database: Database | None, target: PostgresTable) -> Database:
    if database is None:
        raise ConfigError(NO_DATABASE.format(target=target))
    return database


class DatabaseSensor:
    def __init__(self, database: Database | None) -> None:
        self._database = database

    async def lookup_many(
        self, targets: Mapping[str, PostgresTable]
    ) -> dict[str, InputRevision | None]:
        """One by one: a task has one marker, so a batch holds few."""
        return {key: await self.lookup(key, target) for key, target in targets.items()}

    async def lookup(self, key: str, target: PostgresTable) -> InputRevision | None:
        inserted = await require(self._database, target).marker(target.table, target.marker)
        if inserted is None:
            return None
        return InputRevision(key=key, ref=target.table,
                             revision_id=f"{target.table}#{target.marker}@{inserted.isoformat()}",
                             order=micros(inserted))
