"""charon's HTTP edges: shared by the daemon and the registry service."""

BODY_SECONDS = 30.0
"""How long a request body may take to arrive: ample for 64 KiB on the slowest link.
Here rather than in ``http`` so that settings can name it without importing aiohttp."""
HEADER_SECONDS = 30.0
"""How long a new connection may take to send its first request's headers: one that
sends nothing, or a byte at a time, is closed then rather than held for ever (after a
request, aiohttp's keep-alive timeout bounds the wait for the next)."""
