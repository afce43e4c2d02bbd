"""charon's HTTP edges: shared by the daemon and the registry service."""

BODY_SECONDS = 30.0
"""How long a request body may take to arrive: ample for 64 KiB on the slowest link.
Here rather than in ``http`` so that settings can name it without importing aiohttp."""
