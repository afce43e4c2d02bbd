"""Serving an aiohttp app: a port that cannot be listened on is a ConfigError, whatever
the reason, for every caller (the CLI checks its own flags; library callers may not)."""

from __future__ import annotations

import socket

import pytest
from aiohttp import web

from orchestrator.errors import ConfigError
from orchestrator.web import http


@pytest.mark.parametrize("port", [70_000, -1])
async def test_a_port_out_of_range_is_a_config_error(port: int) -> None:
    with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port}"):
        async with http.listening(web.Application(), "127.0.0.1", port):
            pass


async def test_a_port_in_use_is_a_config_error() -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match="cannot listen"):
            async with http.listening(web.Application(), "127.0.0.1", port):
                pass
