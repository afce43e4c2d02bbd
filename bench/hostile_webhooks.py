"""The hostile-input corpus's webhooks: what the daemon's ``/hooks/*`` must refuse.

Signed with the daemon's secret unless the case is about the signature, each with a
fresh delivery id, so a refusal comes from the check the case is about.
"""

from __future__ import annotations

import json
import uuid

from bench.hostile_corpus import (
    ANSWERED,
    BIG_DIGITS,
    DAEMON,
    DAY,
    FULL_WIDTH_DAY,
    HUGE_DIGITS,
    WATCHED,
    WORKFLOW,
    Case,
    Keys,
    Raw,
    Request,
    malformed_http,
    nested,
)
from orchestrator.web.signing import (
    DELIVERY_HEADER,
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    TOLERANCE_SECONDS,
    signature,
)

RUNS = "/hooks/runs"
PARTITIONS = "/hooks/partitions"
RUN = json.dumps({"workflow": WORKFLOW, "date": DAY}).encode()
ACCEPTED = frozenset({202})
MARGIN_SECONDS = 120


def _headers(keys: Keys, body: bytes, *, timestamp: str | None = None,
             delivery: str | None = None) -> dict[str, str]:
    stamp = str(int(keys.now)) if timestamp is None else timestamp
    return {TIMESTAMP_HEADER: stamp, SIGNATURE_HEADER: signature(keys.secret, stamp, body),
            DELIVERY_HEADER: delivery or uuid.uuid4().hex, "Content-Type": "application/json"}


def _hook(path: str, headers: dict[str, str], body: bytes, *, pieces: int = 0,
          pause: float = 0.0) -> Request:
    return Request("POST", path, tuple(headers.items()), body, pieces, pause)


def signed(keys: Keys, body: bytes, path: str = RUNS, **kwargs: str) -> Request:
    return _hook(path, _headers(keys, body, **kwargs), body)


def daemon_cases(keys: Keys) -> list[Case]:
    return _controls(keys) + _signatures(keys) + _payloads(keys) + _others(keys)


def _controls(keys: Keys) -> list[Case]:
    """What must be accepted, so the refusals are refusals of what each case changes."""
    first = signed(keys, RUN, delivery="hostile-replayed")
    again = signed(keys, json.dumps({"workflow": WORKFLOW, "date": "2018-11-01"}).encode(),
                   delivery="hostile-replayed")
    partition = json.dumps({"endpoint": WATCHED, "partition": DAY}).encode()
    return [
        Case("webhook: a valid run request", DAEMON, signed(keys, RUN), ACCEPTED),
        Case("webhook: a valid partition", DAEMON, signed(keys, partition, PARTITIONS), ACCEPTED),
        Case("webhook: a valid run request sent slowly", DAEMON, _hook(
            RUNS, _headers(keys, RUN), RUN, pieces=4, pause=0.2), ACCEPTED),
        # A repeated delivery id is acknowledged once ("200 duplicate"), even re-signed.
        Case("webhook: a replayed delivery", DAEMON, first, frozenset({200}), then=(first,)),
        Case("webhook: a delivery id replayed with another body", DAEMON, again,
             frozenset({200})),
    ]


def _signatures(keys: Keys) -> list[Case]:
    now = int(keys.now)
    good = _headers(keys, RUN)
    without = {name: {k: v for k, v in good.items() if k != name}
               for name in (TIMESTAMP_HEADER, SIGNATURE_HEADER, DELIVERY_HEADER)}
    changed = {
        "unsigned": {"Content-Type": "application/json"},
        **{f"no {name}": headers for name, headers in without.items()},
        "a zero signature": {**good, SIGNATURE_HEADER: "sha256=" + "0" * 64},
        "another secret's signature": {
            **good, SIGNATURE_HEADER: signature(b"other", good[TIMESTAMP_HEADER], RUN)},
        "a signature without its scheme": {
            **good, SIGNATURE_HEADER: good[SIGNATURE_HEADER].removeprefix("sha256=")},
        "a signature in upper case": {**good, SIGNATURE_HEADER: good[SIGNATURE_HEADER].upper()},
        "a delivery id of 129 characters": _headers(keys, RUN, delivery="d" * 129),
        "a delivery id of 5,000 characters": _headers(keys, RUN, delivery="d" * 5000),
    }
    # Past the window by more than the corpus takes to send.
    stamps = {
        "stale": str(now - TOLERANCE_SECONDS - MARGIN_SECONDS),
        "from the future": str(now + TOLERANCE_SECONDS + MARGIN_SECONDS),
        "from the far future": str(now + 10**10),
        "zero": "0",
        "negative": str(-now),
        "in scientific notation": f"{now:e}",
        "fractional": f"{now}.5",
        "of 5,000 digits": HUGE_DIGITS,
        "of 4,000 digits": BIG_DIGITS,
        "in full-width digits": "".join(chr(0xFF10 + int(d)) for d in str(now)),
        "in Arabic-Indic digits": "".join(chr(0x0660 + int(d)) for d in str(now)),
    }
    changed |= {f"a timestamp {name}": _headers(keys, RUN, timestamp=stamp)
                for name, stamp in stamps.items()}
    cases = [Case(f"webhook: {name}", DAEMON, _hook(RUNS, headers, RUN))
             for name, headers in changed.items()]
    raw_signature = (f"{TIMESTAMP_HEADER}: {now}\r\n{SIGNATURE_HEADER}: sha256=\udcff\r\n"
                     f"{DELIVERY_HEADER}: d-raw\r\nContent-Length: {len(RUN)}\r\n")
    raw_stamp = (f"{TIMESTAMP_HEADER}: \udcff\r\n{SIGNATURE_HEADER}: sha256=00\r\n"
                 f"{DELIVERY_HEADER}: d-raw\r\nContent-Length: {len(RUN)}\r\n")
    return [
        *cases,
        Case("webhook: a body changed after signing", DAEMON,
             _hook(RUNS, _headers(keys, RUN), RUN.replace(b"2018", b"2019"))),
        Case("webhook: an undecodable signature", DAEMON, _raw_hook(raw_signature)),
        Case("webhook: an undecodable timestamp", DAEMON, _raw_hook(raw_stamp)),
        Case("webhook: Content-Length of 1 TB", DAEMON, Raw(
            f"POST {RUNS} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: {10**12}\r\n"
            "\r\n{".encode())),
    ]


def _raw_hook(headers: str) -> Raw:
    head = (f"POST {RUNS} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n{headers}\r\n")
    return Raw(head.encode("utf-8", "surrogateescape") + RUN)


def _payloads(keys: Keys) -> list[Case]:
    runs: dict[str, dict[str, object]] = {
        "date 9999-12-31": {"date": "9999-12-31"},
        "date 2018-02-30": {"date": "2018-02-30"},
        "date with a trailing newline": {"date": DAY + "\n"},
        "date in full-width digits": {"date": FULL_WIDTH_DAY},
        "date of 5,000 digits": {"date": HUGE_DIGITS},
        "date a number": {"date": 20181031},
        "date null": {"date": None},
        "an unknown workflow": {"workflow": "nope"},
        "a workflow of 5,000 characters": {"workflow": "w" * 5000},
        "a workflow that is a lone surrogate": {"workflow": "\ud800"},
        "no workflow": {"workflow": None},
    }
    bodies = {f"run with {name}": (RUNS, {"workflow": WORKFLOW, "date": DAY, **fields})
              for name, fields in runs.items()}
    partitions: dict[str, dict[str, object]] = {
        "an endpoint with a trailing newline": {"endpoint": WATCHED + "\n"},
        "partition 9999-12-31": {"partition": "9999-12-31"},
        "partition 2018-13-45": {"partition": "2018-13-45"},
        "a full-width partition": {"partition": FULL_WIDTH_DAY},
        "an empty endpoint": {"endpoint": ""},
        "an endpoint 1e400": {"endpoint": float("inf")},
        "an unwatched endpoint": {"endpoint": "hostile.nobody"},
    }
    bodies |= {f"partition with {name}": (PARTITIONS, {"endpoint": WATCHED, "partition": DAY,
                                                       **fields})
               for name, fields in partitions.items()}
    cases = [Case(f"webhook: {name}", DAEMON, signed(keys, json.dumps(body).encode(), path))
             for name, (path, body) in bodies.items()]
    raw = {
        "JSON nested 100,000 deep": nested(100_000),
        "JSON nested 30,000 deep (under the size limit)": nested(30_000),
        "invalid UTF-8": b"\xff\xfe\xfd",
        "a raw NUL": RUN.replace(b"top", b"t\x00p"),
        "empty": b"",
        "null": b"null",
        "a list": b"[]",
        "a number": b"1",
        "NaN": b'{"workflow": NaN}',
        "1 MB": b'{"workflow": "' + b"w" * 1_000_000 + b'"}',
    }
    cases += [Case(f"webhook body: {name}", DAEMON, signed(keys, body))
              for name, body in raw.items()]
    big = raw["1 MB"]
    slow = b'{"workflow": "' + b"w" * 100_000 + b'"}'
    return [*cases,
            Case("webhook: 1 MB sent chunked", DAEMON,
                 _hook(RUNS, _headers(keys, big), big, pieces=64)),
            Case("webhook: 100 KB sent slowly", DAEMON,
                 _hook(RUNS, _headers(keys, slow), slow, pieces=8, pause=0.2))]


def _others(keys: Keys) -> list[Case]:
    partition = json.dumps({"endpoint": WATCHED, "partition": DAY, "extra": 1}).encode()
    return [
        Case("webhook: form-encoded", DAEMON, _hook(RUNS, {
            **_headers(keys, b"workflow=top_artists"),
            "Content-Type": "application/x-www-form-urlencoded"}, b"workflow=top_artists")),
        Case("webhook: an extra field", DAEMON, signed(keys, partition, PARTITIONS), ANSWERED),
        Case("GET /hooks/runs", DAEMON, Request("GET", RUNS)),
        Case("PUT /hooks/partitions", DAEMON, Request("PUT", PARTITIONS)),
        Case("POST /status", DAEMON, Request("POST", "/status")),
        Case("DELETE /healthz", DAEMON, Request("DELETE", "/healthz")),
        Case("GET an unknown path", DAEMON, Request("GET", "/hooks/nope")),
        Case("GET a lone surrogate path", DAEMON, Request("GET", "/hooks/%ED%A0%80")),
        *malformed_http(DAEMON, RUNS),
    ]
