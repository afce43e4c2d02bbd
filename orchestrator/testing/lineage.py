"""A lineage emitter that keeps what it is given, for tests to read."""

from __future__ import annotations

from dataclasses import dataclass, field

from orchestrator.stores.lineage.base import Event


@dataclass
class RecordingEmitter:
    events: list[Event] = field(default_factory=list)

    async def emit(self, event: Event) -> None:
        self.events.append(event)

    async def aclose(self) -> None:
        """Nothing to close."""

    def of(self, event_type: str) -> list[Event]:
        return [e for e in self.events if e["eventType"] == event_type]
