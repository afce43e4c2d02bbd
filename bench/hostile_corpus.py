"""Hostile text: the strings bad input is made of, shared by the hostile-input benchmark
(bench/hostile_inputs.py) and the property tests over the parsers (tests/unit/
test_properties_*.py), which mix them into what they generate.

Each is a way a parser once let something through or fell over: a trailing newline
(``$`` matches before it), another script's digits (``\\d`` and ``str.isdigit`` take
them, ``int`` takes some and refuses others), numbers past ``int``'s 4,300-digit limit
or past a database integer, lone surrogates (no UTF-8 spelling), NUL and other control
characters, dates past the partition range, a ``gs://`` URI with no bucket.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

HUGE_DIGITS = "9" * 5000
"""Past int()'s default limit of 4,300 digits: ``int(HUGE_DIGITS)`` raises ValueError."""
BIG_DIGITS = "9" * 4000
"""Under that limit, but far past any 64-bit integer a database stores."""
LONE_SURROGATE = "\ud800"
FULL_WIDTH_DAY = "\uff12\uff10\uff11\uff18-\uff11\uff10-\uff13\uff11"  # 2018-10-31
SUPERSCRIPT_TWO = "\u00b2"  # isdigit() says yes, int() says no

HOSTILE_TEXTS: tuple[str, ...] = (
    "",
    " ",
    "\n",
    "2018-10-31\n",
    "2018-10-31\r\n",
    " 2018-10-31",
    "2018-10-31\x00",
    "\x00",
    "plays\n",
    "plays\x00",
    "plays\x7f",
    "plays\t",
    "pl\u0430ys",  # a Cyrillic a
    FULL_WIDTH_DAY,
    "\u0662\u0660\u0661\u0668-\u0661\u0660-\u0663\u0661",  # Arabic-Indic digits
    "2018-1\u00b2-31",
    SUPERSCRIPT_TWO,
    "\uff11\uff12",  # full-width 12
    "\u0661\u0662",  # Arabic-Indic 12
    "1_000",
    "0x10",
    "-1",
    "-0",
    "+1",
    "1e20",
    "1e400",
    "inf",
    "-inf",
    "nan",
    "99999",
    "65536",
    "9223372036854775808",
    "-9223372036854775809",
    BIG_DIGITS,
    HUGE_DIGITS,
    "-" + HUGE_DIGITS,
    "9999-12-31",
    "0001-01-01",
    "0000-00-00",
    "1899-12-31",
    "2201-01-01",
    "2018-02-30",
    "2018-13-01",
    "9999-W52",
    "2018-W00",
    "2018-W54",
    "9999",
    "2012-06-30-2012-06-01",
    LONE_SURROGATE,
    "a" + LONE_SURROGATE + "b",
    "\udcff",  # how surrogateescape spells an undecodable byte
    "gs://",
    "gs:///path",
    "gs://bucket",
    "gs://bucket\n/path",
    "/",
    "/data/\x00/x",
    "/data/x\n",
    "relative/path",
    "file:///etc/passwd",
    "../../etc/passwd",
    "a" * 256,
    "a" * 100_000,
    "x; DROP TABLE revisions",
    "'\"",
    "%00",
    "%ED%A0%80",
    "\u202e",  # right-to-left override
    "\ufeff",  # byte order mark
    "\U0001f600",
    "true",
    "TRUE",
    "null",
    "[]",
    "{}",
)


# The corpus the benchmark throws at the live services: requests and what each must get.

REGISTRY = "registry"
DAEMON = "daemon"
REFUSED = frozenset(range(400, 500))
"""Any 4xx: the input must be refused, and how is the service's choice."""
ANSWERED = frozenset(range(200, 500))
"""Either way, as long as it is a clear answer: the input is odd, not wrong."""
DAY = "2018-10-31"
WATCHED = "di.golden.path.EndContentFactXT2"
"""The endpoint the daemon's workflow reads (jobs.top_artists)."""
WORKFLOW = "top_artists"


@dataclass(frozen=True)
class Request:
    """An HTTP request as aiohttp sends it; ``path`` goes out exactly as written."""

    method: str
    path: str
    headers: tuple[tuple[str, str], ...] = ()
    body: bytes = b""
    pieces: int = 0
    """More than 0: the body goes chunked, in this many pieces."""
    pause: float = 0.0
    """Seconds between pieces: a slow client."""


@dataclass(frozen=True)
class Raw:
    """Bytes written straight to the socket: HTTP no client library would send."""

    data: bytes


@dataclass(frozen=True)
class Case:
    name: str
    service: str
    request: Request | Raw
    expect: frozenset[int] = REFUSED
    then: tuple[Request, ...] = ()
    """Sent first, answer unjudged: what a replay replays."""


@dataclass(frozen=True)
class Keys:
    """What the corpus signs and authenticates with, and the moment it is built."""

    token: str
    secret: bytes
    now: float


def nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def publish_body(**fields: object) -> bytes:
    body: dict[str, object] = {"endpoint": "hostile.plays", "partition": DAY,
                               "uri": "/data/hostile/plays"}
    body.update(fields)
    return json.dumps(body).encode()


def _publish(keys: Keys, body: bytes, *, content_type: str = "application/json",
             extra: tuple[tuple[str, str], ...] = (), pieces: int = 0,
             pause: float = 0.0) -> Request:
    headers = (("Authorization", f"Bearer {keys.token}"), ("Content-Type", content_type))
    return Request("POST", "/v1/revisions", headers + extra, body, pieces, pause)


def _raw(method: str, path: str, headers: str = "", body: bytes = b"") -> Raw:
    head = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}"
    return Raw(head.encode("utf-8", "surrogateescape") + b"\r\n" + body)


# Publishes the registry must refuse, whatever is in them, and change nothing.
REFUSED_PUBLISHES: dict[str, dict[str, object]] = {
    "endpoint with a trailing newline": {"endpoint": "hostile.plays\n"},
    "endpoint with NUL": {"endpoint": "hostile\u0000plays"},
    "endpoint 256 characters": {"endpoint": "a" * 256},
    "endpoint a lone surrogate": {"endpoint": LONE_SURROGATE},
    "endpoint a number": {"endpoint": 12},
    "endpoint 1e400": {"endpoint": float("inf")},
    "endpoint null": {"endpoint": None},
    "partition 9999-12-31": {"partition": "9999-12-31"},
    "partition 2018-13-45": {"partition": "2018-13-45"},
    "partition 0000": {"partition": "0000"},
    "partition with a trailing newline": {"partition": DAY + "\n"},
    "partition in full-width digits": {"partition": FULL_WIDTH_DAY},
    "partition in Arabic-Indic digits": {"partition": "\u0662\u0660\u0661\u0668"},
    "partition a huge number": {"partition": 10**300},
    "partition negative": {"partition": -1},
    "uri gs:// with no bucket": {"uri": "gs://"},
    "uri gs:/// with no bucket": {"uri": "gs:///path"},
    "uri relative": {"uri": "relative/path"},
    "uri file://": {"uri": "file:///etc/passwd"},
    "uri with NUL": {"uri": "/data/\u0000"},
    "uri with a trailing newline": {"uri": "/data/x\n"},
    "uri with an escape sequence": {"uri": "/data/\u001b[2J"},
    "uri a lone surrogate": {"uri": "/data/" + LONE_SURROGATE},
    "lineage a string": {"lineage": "abc"},
    "lineage numbers": {"lineage": [1, 2]},
    "lineage an empty id": {"lineage": [""]},
    "lineage an id with a space": {"lineage": ["a b"]},
    "lineage an id with NUL": {"lineage": ["a\u0000"]},
    "lineage a lone surrogate": {"lineage": [LONE_SURROGATE]},
    "lineage an object": {"lineage": {"a": 1}},
    "lineage 20,000 ids": {"lineage": [f"r{n}" for n in range(20_000)]},
    "lineage nested lists": {"lineage": [["a"]]},
    "an unknown field": {"colour": "red"},
}


def registry_cases(keys: Keys) -> list[Case]:
    cases = [Case(f"publish: {name}", REGISTRY, _publish(keys, publish_body(**fields)))
             for name, fields in REFUSED_PUBLISHES.items()]
    bodies = {
        "JSON nested 100,000 deep": nested(100_000),
        "JSON nested 30,000 deep (under the size limit)": nested(30_000),
        "lineage nested 30,000 deep": publish_body()[:-1] + b', "lineage": '
        + nested(30_000) + b"}",
        "invalid UTF-8": b"\xff\xfe\xfd",
        "invalid UTF-8 in a string": publish_body().replace(b"hostile.plays", b"pl\xffays"),
        "a raw NUL in a string": publish_body().replace(b"hostile.plays", b"pl\x00ays"),
        "empty": b"",
        "null": b"null",
        "a list": b"[]",
        "a string": b'"x"',
        "an empty object": b"{}",
        "missing uri": b'{"endpoint": "hostile.plays", "partition": "2018-10-31"}',
        "a 5,000-digit number": b'{"endpoint": ' + HUGE_DIGITS.encode() + b"}",
        "NaN": b'{"endpoint": NaN}',
        "truncated": publish_body()[:-5],
        "1 MB": publish_body(uri="/" + "a" * 1_000_000),
    }
    cases += [Case(f"publish body: {name}", REGISTRY, _publish(keys, body))
              for name, body in bodies.items()]
    big = publish_body(uri="/" + "a" * 1_000_000)
    cases += [
        Case("publish: 1 MB sent chunked", REGISTRY, _publish(keys, big, pieces=64)),
        Case("publish: 100 KB sent slowly", REGISTRY,
             _publish(keys, publish_body(uri="/" + "a" * 100_000), pieces=8, pause=0.2)),
        Case("publish: an invalid body sent slowly", REGISTRY,
             _publish(keys, publish_body(partition="9999-12-31"), pieces=4, pause=0.2)),
        Case("publish: form-encoded", REGISTRY, _publish(
            keys, b"endpoint=hostile.plays&partition=2018-10-31&uri=/x",
            content_type="application/x-www-form-urlencoded")),
        Case("publish: multipart", REGISTRY, _publish(
            keys, b"--b\r\nContent-Disposition: form-data; name=endpoint\r\n\r\nx\r\n--b--\r\n",
            content_type="multipart/form-data; boundary=b")),
        Case("publish: text/plain", REGISTRY, _publish(keys, b"hello", content_type="text/plain")),
        Case("publish: no token", REGISTRY, Request("POST", "/v1/revisions",
                                                     body=publish_body())),
        Case("publish: a wrong token", REGISTRY, Request(
            "POST", "/v1/revisions", (("Authorization", "Bearer wrong"),), publish_body())),
        Case("publish: Basic auth", REGISTRY, Request(
            "POST", "/v1/revisions", (("Authorization", f"Basic {keys.token}"),),
            publish_body())),
        Case("publish: an undecodable token", REGISTRY, _raw(
            "POST", "/v1/revisions", "Authorization: Bearer \udcff\udcfe\r\n"
            f"Content-Length: {len(publish_body())}\r\n", publish_body())),
        Case("publish: Content-Length 10^20", REGISTRY, _raw(
            "POST", "/v1/revisions", f"Authorization: Bearer {keys.token}\r\n"
            f"Content-Length: {10**20}\r\n", b"{")),
        # Declared far over max_body_bytes: refused on the header, not after a terabyte.
        Case("publish: Content-Length of 1 TB", REGISTRY, _raw(
            "POST", "/v1/revisions", f"Authorization: Bearer {keys.token}\r\n"
            f"Content-Length: {10**12}\r\n", b"{")),
        Case("publish: idempotency key of 201 characters", REGISTRY, _publish(
            keys, publish_body(), extra=(("Idempotency-Key", "k" * 201),))),
        Case("publish: idempotency key in full-width letters", REGISTRY, _publish(
            keys, publish_body(), extra=(("Idempotency-Key", "\uff4b\uff45\uff59"),))),
        Case("publish: two idempotency keys", REGISTRY, _publish(
            keys, publish_body(), extra=(("Idempotency-Key", "a1"), ("Idempotency-Key", "a2")))),
        Case("publish: an undecodable idempotency key", REGISTRY, _raw(
            "POST", "/v1/revisions", f"Authorization: Bearer {keys.token}\r\n"
            f"Idempotency-Key: k\udcff\r\nContent-Length: {len(publish_body())}\r\n",
            publish_body())),
        Case("publish: an idempotency key reused for another partition", REGISTRY, _publish(
            keys, publish_body(partition="2018-11-01"),
            extra=(("Idempotency-Key", SETUP_KEY),)), frozenset({409})),
        Case("publish: an idempotency key replayed", REGISTRY, _publish(
            keys, publish_body(), extra=(("Idempotency-Key", SETUP_KEY),)), frozenset({200})),
    ]
    return cases + _registry_reads() + malformed_http(REGISTRY, "/v1/changes")


SETUP_KEY = "hostile-setup-1"
"""The idempotency key of one of the revisions published before the corpus."""


def _registry_reads() -> list[Case]:
    latest = "/v1/endpoints/{}/partitions/{}/latest"
    paths = {
        "latest of a lone surrogate endpoint": latest.format("%ED%A0%80", DAY),
        "latest of an undecodable endpoint": latest.format("%FF%FE", DAY),
        "latest of a NUL endpoint": latest.format("a%00b", DAY),
        "latest of partition 9999-12-31": latest.format("hostile.plays", "9999-12-31"),
        "latest of a full-width partition": latest.format(
            "hostile.plays", "%EF%BC%92%EF%BC%90%EF%BC%91%EF%BC%98"),
        "revisions of a 5,000-character endpoint": "/v1/endpoints/" + "a" * 5000
        + f"/partitions/{DAY}/revisions",
        "a revision id that is a lone surrogate": "/v1/revisions/%ED%A0%80",
        "a revision id with NUL": "/v1/revisions/%00",
        "a revision id of 5,000 characters": "/v1/revisions/" + "a" * 5000,
        "an unknown path": "/v1/nope",
        "an unknown version": "/v2/changes",
        "the root": "/",
    }
    cases = [Case(f"GET {name}", REGISTRY, Request("GET", path)) for name, path in paths.items()]
    queries = {
        "since=1e20": "since=1e20", "since of 5,000 digits": f"since={HUGE_DIGITS}",
        "since of 4,000 digits": f"since={BIG_DIGITS}",
        "since=2^63": "since=9223372036854775808",
        "since=-2^63-1": "since=-9223372036854775809",
        "since in full-width digits": "since=%EF%BC%91%EF%BC%92",
        "since=1_0": "since=1_0", "since empty": "since=", "since=nan": "since=nan",
        "since=inf": "since=inf", "since=0x10": "since=0x10", "since=%00": "since=%00",
        "since a lone surrogate": "since=%ED%A0%80", "limit=0": "limit=0",
        "limit=-1": "limit=-1", "limit=10001": "limit=10001", "limit=1e3": "limit=1e3",
        "limit of 5,000 digits": f"limit={HUGE_DIGITS}", "wait=nan": "wait=nan",
        "wait=inf": "wait=inf", "wait=-1": "wait=-1", "wait of 5,000 digits": f"wait={HUGE_DIGITS}",
    }
    cases += [Case(f"GET changes {name}", REGISTRY, Request("GET", f"/v1/changes?{query}"))
              for name, query in queries.items()]
    cases += [Case(f"GET changes {name}", REGISTRY, Request("GET", f"/v1/changes?{query}"),
                   ANSWERED) for name, query in {
        "with since twice": "since=0&since=1", "with limit twice": "limit=1&limit=2",
        "wait=1e308 with revisions to show": "since=0&wait=1e308",
    }.items()]
    methods = [("GET", "/v1/revisions"), ("PUT", "/v1/revisions"), ("DELETE", "/v1/revisions/x"),
               ("PATCH", "/v1/revisions"), ("POST", "/v1/changes"), ("DELETE", "/healthz"),
               ("OPTIONS", "/v1/revisions"), ("TRACE", "/v1/changes")]
    cases += [Case(f"{method} {path}", REGISTRY, Request(method, path)) for method, path in methods]
    return cases


def malformed_http(service: str, path: str) -> list[Case]:
    """HTTP that never reaches the application: refused all the same, in JSON."""
    raws = {
        "a garbage request line": b"GARBAGE\r\n\r\n",
        "an undecodable path": b"GET /v1/\xff\xfe HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n",
        "a 20 KB header": _raw("GET", path, f"X-Big: {'a' * 20_000}\r\n").data,
        "a 20 KB URL": _raw("GET", path + "?" + "a" * 20_000).data,
        "Content-Length -1": _raw("POST", path, "Content-Length: -1\r\n").data,
        "Content-Length abc": _raw("POST", path, "Content-Length: abc\r\n").data,
        "Content-Length and chunked": _raw(
            "POST", path, "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n", b"0\r\n\r\n").data,
        "a bad chunk size": _raw("POST", path, "Transfer-Encoding: chunked\r\n", b"zz\r\n").data,
        "a chunk size past 2^64": _raw(
            "POST", path, "Transfer-Encoding: chunked\r\n", b"FFFFFFFFFFFFFFFFFFFF\r\n").data,
        "a NUL in a header": _raw("GET", path, "X-Nul: a\x00b\r\n").data,
    }
    return [*(Case(f"malformed HTTP: {name}", service, Raw(data)) for name, data in raws.items()),
            # aiohttp reads a request line without a version as HTTP/0.9; charon refuses it.
            Case("malformed HTTP: an HTTP/0.9 request", service,
                 Raw(f"GET {path}\r\n\r\n".encode()))]
