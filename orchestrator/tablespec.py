"""Warehouse table specs in BigQuery's legacy syntax: ``project:dataset.table``."""

from __future__ import annotations

import re
from dataclasses import dataclass

from orchestrator.errors import InvalidIdentifier

# BigQuery's own rules: project ids are 6-30 chars of lowercase letters, digits and
# hyphens (we also allow the legacy "domain.com:" prefix), dataset and table ids are
# letters, digits and underscores. Anything else is refused before it reaches SQL.
# Always used with fullmatch, which unlike `$` refuses a trailing newline.
_PROJECT = re.compile(r"(?:[a-z][a-z0-9.-]{0,62}:)?[a-z][a-z0-9-]{4,28}[a-z0-9]")
_DATASET = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,1023}")
_TABLE = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,1023}")


@dataclass(frozen=True, order=True)
class TableSpec:
    project: str
    dataset: str
    table: str

    def __post_init__(self) -> None:
        if not _PROJECT.fullmatch(self.project):
            raise InvalidIdentifier(f"invalid project id {self.project!r}")
        if not _DATASET.fullmatch(self.dataset):
            raise InvalidIdentifier(f"invalid dataset id {self.dataset!r}")
        if not _TABLE.fullmatch(self.table):
            raise InvalidIdentifier(f"invalid table id {self.table!r}")

    @classmethod
    def parse(cls, spec: str) -> TableSpec:
        """Parse ``project:dataset.table``; raise InvalidIdentifier on anything else."""
        project, colon, rest = spec.rpartition(":")
        dataset, dot, table = rest.partition(".")
        if not (colon and dot):
            raise InvalidIdentifier(
                f"invalid table spec {spec!r}: expected project:dataset.table"
            )
        return cls(project, dataset, table)

    def __str__(self) -> str:
        return f"{self.project}:{self.dataset}.{self.table}"
