"""One HTTP/1.1 exchange over a bare socket: for requests no client library would send
(undecodable headers, a body that never finishes)."""

from __future__ import annotations

import re

import anyio

_LENGTH = re.compile(rb"\r\ncontent-length: *([0-9]+)", re.IGNORECASE)


async def exchange(base: str, head: list[bytes], body: bytes) -> tuple[bytes, bytes]:
    """Send ``head`` (request line and headers, ``Connection: close`` added) and ``body``
    to ``http://host:port``; return the answer's status line and headers, and its body.
    The answer ends at its Content-Length: a server may keep reading a request body it
    did not want for a while before it closes."""
    host, port = base.removeprefix("http://").split(":")
    async with await anyio.connect_tcp(host, int(port)) as stream:
        await stream.send(b"\r\n".join([*head, b"Connection: close"]) + b"\r\n\r\n" + body)
        answer = b""
        while not _complete(answer):
            try:
                answer += await stream.receive()
            except anyio.EndOfStream:
                break
    status, _, answer_body = answer.partition(b"\r\n\r\n")
    return status, answer_body


def _complete(answer: bytes) -> bool:
    head, separator, body = answer.partition(b"\r\n\r\n")
    length = _LENGTH.search(head)
    return bool(separator) and length is not None and len(body) >= int(length.group(1))
