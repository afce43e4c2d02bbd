"""Requests that are not HTTP the services can parse, sent as raw bytes to the daemon and
the registry service (`charon` subprocesses): each is answered with the service's JSON
error, never aiohttp's plain text, and its connection closed, since the request's end
(and so where a next one would begin) is unknown."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support.live_services import TOKEN, LiveService

HOST = b"Host: 127.0.0.1\r\n"
CHUNKED = b"POST /v1/revisions HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: chunked\r\n"

MALFORMED = {
    "no request line": b"GARBAGE\r\n\r\n",
    "a method with a bracket": b"G(T / HTTP/1.1\r\n" + HOST + b"\r\n",
    "a TLS handshake": b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"\x00" * 32,
    "HTTP/0.9": b"GET /healthz\r\n\r\n",
    "HTTP/9.9": b"GET /healthz HTTP/9.9\r\n" + HOST + b"\r\n",
    "a control byte in the target": b"GET /\x01 HTTP/1.1\r\n" + HOST + b"\r\n",
    "a byte over 0x7f in the target": b"GET /\xff HTTP/1.1\r\n" + HOST + b"\r\n",
    "an unclosed IPv6 absolute target": b"GET http://[::1 HTTP/1.1\r\n" + HOST + b"\r\n",
    "a space in the target": b"GET /a b HTTP/1.1\r\n" + HOST + b"\r\n",
    "a target over the line limit": b"GET /" + b"a" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
    "a header without a colon": b"GET /healthz HTTP/1.1\r\n" + HOST + b"no colon\r\n\r\n",
    "a NUL in a header value": b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-A: a\x00b\r\n\r\n",
    "a header over the line limit":
        b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-Long: " + b"a" * 9000 + b"\r\n\r\n",
    "too many headers": b"GET /healthz HTTP/1.1\r\n" + HOST
        + b"".join(b"X-%d: v\r\n" % n for n in range(200)) + b"\r\n",
    "no Host header": b"GET /healthz HTTP/1.1\r\n\r\n",
    "bare LF line ends": b"GET /healthz HTTP/1.1\nHost: 127.0.0.1\n\n",
    "a Content-Length not a number":
        b"POST /v1/revisions HTTP/1.1\r\n" + HOST + b"Content-Length: abc\r\n\r\n",
    "a negative Content-Length":
        b"POST /v1/revisions HTTP/1.1\r\n" + HOST + b"Content-Length: -1\r\n\r\n",
    "two Content-Lengths": b"POST /v1/revisions HTTP/1.1\r\n" + HOST
        + b"Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
    "Content-Length and chunked": CHUNKED + b"Content-Length: 3\r\n\r\n0\r\n\r\n",
    "a Transfer-Encoding other than chunked":
        b"POST /v1/revisions HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: gzip\r\n\r\n",
    "chunked twice": b"POST /v1/revisions HTTP/1.1\r\n" + HOST
        + b"Transfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n",
    "a chunk size not in hex": CHUNKED + b"\r\nzz\r\nab\r\n0\r\n\r\n",
    "a chunk shorter than its size": CHUNKED + b"\r\n5\r\nab\r\n0\r\n\r\n",
    "a NUL in a chunk extension": CHUNKED + b"\r\n2;\x00\r\nab\r\n0\r\n\r\n",
}


@dataclass(frozen=True)
class Server:
    url: str
    malformed_code: str
    """The code of the service's own 400s for a request it cannot use."""
    log: Path


@pytest.fixture(params=["daemon", "registry"])
def server(request: pytest.FixtureRequest) -> Server:
    live: LiveService = request.getfixturevalue(f"served_{request.param}")
    return Server(live.url, "malformed" if request.param == "daemon" else "bad_request",
                  live.log)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: dict[str, str]
    body: bytes

    def error(self) -> dict[str, object]:
        """The JSON error body, once the headers say it is JSON."""
        assert self.headers["content-type"].startswith("application/json"), self.body
        error = json.loads(self.body)
        assert isinstance(error, dict)
        return error


async def answer_to(url: str, raw: bytes, *later: bytes) -> Answer:
    """The answer to ``raw``, then to each of ``later`` sent a moment after (a packet of
    its own), read up to the server closing the connection: a server that kept it open
    would fail here, by timing out."""
    host, port = url.removeprefix("http://").split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    try:
        for index, packet in enumerate((raw, *later)):
            if index:
                await asyncio.sleep(0.3)
            writer.write(packet)
            await writer.drain()
        received = await asyncio.wait_for(reader.read(), timeout=10)
    finally:
        writer.close()
    head, _, body = received.partition(b"\r\n\r\n")
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = {name.lower(): value
               for name, _, value in (line.partition(": ") for line in header_lines)}
    return Answer(int(status_line.split(" ")[1]), headers, body)


@pytest.mark.parametrize("raw", MALFORMED.values(), ids=MALFORMED.keys())
async def test_a_malformed_request_gets_a_json_400_and_a_closed_connection(
    server: Server, raw: bytes
) -> None:
    answer = await answer_to(server.url, raw)
    error = answer.error()
    assert (answer.status, error["code"]) == (400, server.malformed_code)
    assert isinstance(error["error"], str)
    assert error["error"]


def encoded_body_request(server: Server) -> bytes:
    """A publish (or a run webhook) whose gzip-encoded body is not gzip: the request's
    framing is sound, so a handler sees it, and its body fails as the handler reads it."""
    path = b"/hooks/runs" if server.malformed_code == "malformed" else b"/v1/revisions"
    return (b"POST " + path + b" HTTP/1.1\r\n" + HOST + b"Authorization: Bearer "
            + TOKEN.encode() + b"\r\nContent-Type: application/json\r\n"
            + b"Content-Encoding: gzip\r\nContent-Length: 4\r\nConnection: close\r\n\r\nabcd")


async def test_a_body_that_does_not_decode_gets_a_json_400(server: Server) -> None:
    answer = await answer_to(server.url, encoded_body_request(server))
    assert (answer.status, answer.error()["code"]) == (400, server.malformed_code)


async def test_a_bad_chunk_after_the_headers_gets_a_json_400_at_once(server: Server) -> None:
    """Its handler already reads the body when the bad chunk comes: it is told, rather
    than left waiting for a body that never ends (a 408, 30 s later)."""
    head = encoded_body_request(server).partition(b"\r\n\r\n")[0]
    head = head.replace(b"Content-Encoding: gzip\r\nContent-Length: 4\r\n",
                        b"Transfer-Encoding: chunked\r\n")
    answer = await answer_to(server.url, head + b"\r\n\r\n2\r\n{}\r\n", b"zz\r\nab\r\n")
    assert (answer.status, answer.error()["code"]) == (400, server.malformed_code)
    assert "Traceback" not in server.log.read_text()


async def test_a_malformed_request_is_logged_in_one_line_not_a_traceback(
    server: Server,
) -> None:
    """Anyone can send garbage to an open port: a traceback per request would let them
    fill the service's log."""
    for raw in MALFORMED.values():
        await answer_to(server.url, raw)
    log = server.log.read_text()
    assert "Traceback" not in log
    assert log.count("malformed HTTP refused") >= len(MALFORMED) - 1  # HTTP/0.9: a handler's
