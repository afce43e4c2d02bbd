"""Schema migrations, shared by the SQLite and PostgreSQL drivers.

Each store's schema evolves through numbered ``.sql`` files beside its port, one folder
per backend: ``orchestrator/stores/<port>/migrations/<backend>/0001_init.sql``. A driver
applies the pending ones in version order, each in one transaction with its
``schema_migrations`` row.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from orchestrator.errors import CharonError

_MIGRATION_FILE = re.compile(r"^(\d{4})_([A-Za-z0-9_]+)\.sql$")


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str


def load_migrations(name: str) -> list[Migration]:
    """The numbered scripts of ``orchestrator/stores/<port>/migrations/<backend>``, in
    version order; ``name`` is ``<port>/<backend>``."""
    port, backend = name.split("/")
    # The package's folder on disk, not importlib.resources: charon is never imported
    # from a zip, and that import is a twentieth of every command's start-up.
    folder = Path(__file__).resolve().parents[1] / port / "migrations" / backend
    found = []
    for entry in folder.iterdir():
        match = _MIGRATION_FILE.match(entry.name)
        if match:
            found.append(Migration(int(match[1]), match[2], entry.read_text("utf-8")))
    found.sort(key=lambda migration: migration.version)
    versions = [migration.version for migration in found]
    if len(set(versions)) != len(versions):
        raise CharonError(f"duplicate migration versions in migrations/{name}: {versions}")
    return found
