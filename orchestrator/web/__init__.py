"""charon's HTTP edges: shared by the daemon and the registry service."""

BODY_SECONDS = 30.0
"""How long a request body may take to arrive: ample for 64 KiB on the slowest link.
Here rather than in ``http`` so that settings can name it without importing aiohttp."""
HEADER_SECONDS = 30.0
"""How long a request's headers may take from a new connection, or from the request's
first byte: a connection that sends nothing, or a byte at a time, is closed then
rather than held for ever."""
KEEPALIVE_SECONDS = 75.0
"""How long a connection may stay idle after an answered request (nginx's default):
aiohttp's own is an hour, a place of the connection budget held by every client that
leaves its pooled connections open."""
