"""Hostile inputs: does bad input ever crash, 500 or half-apply a live service?

Starts `charon registry serve` (bearer token, SQLite registry in a temporary home)
and `charon daemon` (CHARON_WEBHOOK_SECRET set, the top-artists workflow watched), as
subprocesses, publishes a few valid revisions, snapshots the registry (every revision
through /v1/changes), then sends the corpus of bench/hostile_corpus.py and
bench/hostile_webhooks.py, one request at a time: deep JSON, huge and foreign-script
numbers, lone surrogates, invalid UTF-8, NUL bytes, dates past the range, oversized
bodies sent whole, chunked and slowly, wrong methods and content types, signed
webhooks with hostile payloads, replays, stale and future timestamps, bad signatures,
malformed HTTP. A case is mishandled when its answer is a 5xx, a 4xx that is not the
promised JSON error, a 2xx for input that must be refused, or no answer at all (the
connection dropped, or nothing within the time allowed). Afterwards both services
must answer /healthz, neither may have exited, and the registry must hold exactly
the snapshot: a refused publish adds nothing.
Usage: .venv/bin/python bench/hostile_inputs.py [--only TEXT] [--keep DIR]
Exit status 1 when a case is mishandled.
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import anyio
from yarl import URL

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.chaos_stack import CHARON, TOKEN, Service, base_env  # after the path is set
from bench.hostile_corpus import (
    DAEMON,
    DAY,
    REGISTRY,
    SETUP_KEY,
    WORKFLOW,
    Case,
    Keys,
    Raw,
    Request,
    registry_cases,
)
from bench.hostile_webhooks import daemon_cases

SECRET = "hostile-webhook-secret"
ACCEPTED = 202
CASE_SECONDS = 10.0
SHOWN_BODY = 160


@dataclass(frozen=True)
class Answer:
    status: int
    body: bytes


@dataclass(frozen=True)
class Stack:
    urls: dict[str, str]
    services: tuple[Service, ...]


def _config(root: Path) -> Path:
    config = root / "charon.toml"
    config.write_text(
        f'[[workflows]]\nname = "{WORKFLOW}"\nmodule = "jobs.top_artists"\n'
        f'task = "TopArtistsJob"\nparams = {{ top_n = 10 }}\nstart = "{DAY}"\nend = "{DAY}"\n'
    )
    return config


@asynccontextmanager
async def running_stack(root: Path, say: Callable[[str], None]) -> AsyncIterator[Stack]:
    """The registry service and a daemon reading it, both subprocesses of this checkout."""
    logs = root / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = base_env(root / "home")
    services: list[Service] = []
    async with anyio.create_task_group() as group:
        try:
            registry = Service("registry", [CHARON, "registry", "serve", "--port", "0"], env,
                               logs=logs, ready="registry serving on ", say=say)
            services.append(registry)
            await registry.start(group)
            registry_url = await registry.wait_ready()
            daemon = Service("daemon", [CHARON, "daemon", "--port", "0"], {
                **env, "CHARON_CONFIG": str(_config(root)), "CHARON_WEBHOOK_SECRET": SECRET,
                "CHARON_REGISTRY__KIND": "http", "CHARON_REGISTRY__URL": registry_url,
            }, logs=logs, ready="daemon listening on ", say=say)
            services.append(daemon)
            await daemon.start(group)
            daemon_url = await daemon.wait_ready()
            yield Stack({REGISTRY: registry_url, DAEMON: daemon_url}, (registry, daemon))
        finally:
            for service in services:
                await service.close()


async def send(session: aiohttp.ClientSession, base: str, request: Request | Raw) -> Answer:
    if isinstance(request, Raw):
        return await _send_raw(URL(base), request.data)
    data: bytes | AsyncIterator[bytes] = request.body
    if request.pieces:
        data = _pieces(request)
    async with session.request(request.method, URL(base + request.path, encoded=True),
                               headers=list(request.headers), data=data) as response:
        return Answer(response.status, await response.read())


async def _pieces(request: Request) -> AsyncIterator[bytes]:
    size = max(1, -(-len(request.body) // request.pieces))
    for start in range(0, len(request.body), size):
        yield request.body[start:start + size]
        await anyio.sleep(request.pause)


async def _send_raw(base: URL, data: bytes) -> Answer:
    """Write ``data`` as is; read the answer until it is whole or the server closes."""
    assert base.host is not None  # the services' own URLs have both
    assert base.port is not None
    received = b""
    async with await anyio.connect_tcp(base.host, base.port) as stream:
        try:
            await stream.send(data)
            while (answer := _parsed(received)) is None:
                received += await stream.receive()
        except (anyio.EndOfStream, anyio.BrokenResourceError, ConnectionError):
            pass
    answer = _parsed(received, complete=True)
    if answer is None:
        raise ConnectionError(f"the server closed the connection after {len(received)} bytes")
    return answer


def _parsed(received: bytes, *, complete: bool = False) -> Answer | None:
    head, separator, body = received.partition(b"\r\n\r\n")
    if not separator:
        return None
    status_line, *header_lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.lower().split(":", 1) for line in header_lines if ":" in line)
    length = headers.get("content-length")
    if length is not None and len(body) < int(length) and not complete:
        return None
    if length is None and not complete:
        return None
    return Answer(int(status_line.split()[1]), body)


def judge(case: Case, answer: Answer) -> str | None:
    """Why the answer mishandles the case; None when it is right."""
    if answer.status >= 500:
        return f"answered {answer.status}"
    if answer.status not in case.expect:
        wanted = "a 4xx refusal" if min(case.expect) >= 400 else sorted(case.expect)[:3]
        return f"answered {answer.status}, expected {wanted}"
    if answer.status >= 400:
        try:
            error = json.loads(answer.body)
        except ValueError:
            return f"answered {answer.status} with a body that is not JSON"
        if not (isinstance(error, dict) and isinstance(error.get("error"), str)
                and isinstance(error.get("code"), str)):
            return f"answered {answer.status} without {{\"error\": ..., \"code\": ...}}"
    return None


async def attempt(session: aiohttp.ClientSession, stack: Stack,
                  case: Case) -> tuple[str | None, list[int]]:
    """Why the case was mishandled (None: it was not), and the statuses answered."""
    base = stack.urls[case.service]
    statuses: list[int] = []
    try:
        with anyio.fail_after(CASE_SECONDS):
            for earlier in case.then:
                statuses.append((await send(session, base, earlier)).status)
            answer = await send(session, base, case.request)
    except TimeoutError:
        return f"no answer within {CASE_SECONDS:g} s", statuses
    except (aiohttp.ClientError, OSError) as exc:
        return f"the connection dropped: {type(exc).__name__}: {exc}", statuses
    verdict = judge(case, answer)
    if verdict is not None:
        verdict = f"{verdict}: {answer.body[:SHOWN_BODY]!r}"
    return verdict, [*statuses, answer.status]


async def publish_valid(session: aiohttp.ClientSession, url: str) -> None:
    """A few revisions, one under an idempotency key, for the corpus to replay and spare."""
    auth = {"Authorization": f"Bearer {TOKEN}"}
    for n, key in enumerate([SETUP_KEY, None, None]):
        headers = auth | ({"Idempotency-Key": key} if key else {})
        body = {"endpoint": "hostile.plays", "partition": DAY, "uri": f"/data/hostile/{n}",
                "lineage": [f"input-{n}"]}
        async with session.post(f"{url}/v1/revisions", json=body, headers=headers) as answer:
            if answer.status != 201:
                raise RuntimeError(f"a valid publish answered {answer.status}: "
                                   f"{await answer.text()}")


async def snapshot(session: aiohttp.ClientSession, url: str) -> list[object]:
    async with session.get(f"{url}/v1/changes", params={"since": "0", "limit": "10000"}) as got:
        got.raise_for_status()
        revisions: list[object] = (await got.json())["revisions"]
        return revisions


async def webhook_triggers(session: aiohttp.ClientSession, url: str) -> int:
    """How many webhooks the daemon has turned into triggers, by its metrics."""
    async with session.get(f"{url}/metrics") as answer:
        answer.raise_for_status()
        text = await answer.text()
    found = re.search(r'^charon_triggers_total{source="webhook"} (\d+)$', text, re.M)
    return int(found[1]) if found else 0


async def aftermath(session: aiohttp.ClientSession, stack: Stack, before: list[object],
                    accepted: int) -> list[str]:
    """What is wrong once the corpus is through: a service down, the registry changed,
    or a refused webhook that triggered something anyway."""
    wrong = [exit for service in stack.services for exit in service.unexpected_exits]
    for name, url in stack.urls.items():
        try:
            with anyio.fail_after(CASE_SECONDS):
                async with session.get(f"{url}/healthz") as health:
                    if health.status != 200:
                        wrong.append(f"{name} /healthz answered {health.status}")
        except (TimeoutError, aiohttp.ClientError, OSError) as exc:
            wrong.append(f"{name} /healthz failed: {type(exc).__name__}: {exc}")
    if wrong:
        return wrong
    after = await snapshot(session, stack.urls[REGISTRY])
    added = [revision for revision in after if revision not in before]
    wrong += [f"the registry gained a revision: {json.dumps(revision)[:300]}"
              for revision in added]
    if len(after) - len(added) != len(before):
        wrong.append(f"the registry lost revisions: {len(before)} before, {len(after)} after")
    # The daemon queues an accepted webhook's trigger and counts it when it takes it.
    with anyio.move_on_after(CASE_SECONDS):
        while (triggered := await webhook_triggers(session, stack.urls[DAEMON])) < accepted:
            await anyio.sleep(0.1)
    if triggered != accepted:
        wrong.append(f"the daemon took {triggered} webhook triggers for {accepted} webhooks"
                     " it accepted (202)")
    return wrong


@dataclass(frozen=True)
class Outcome:
    tried: int
    mishandled: list[tuple[str, str]]
    aftermath: list[str]
    seconds: float

    @property
    def ok(self) -> bool:
        return not (self.mishandled or self.aftermath)


async def run(root: Path, only: str = "", say: Callable[[str], None] = print) -> Outcome:
    started = time.monotonic()
    async with running_stack(root, say) as stack, aiohttp.ClientSession() as session:
        await publish_valid(session, stack.urls[REGISTRY])
        before = await snapshot(session, stack.urls[REGISTRY])
        keys = Keys(TOKEN, SECRET.encode(), time.time())
        cases = [case for case in registry_cases(keys) + daemon_cases(keys)
                 if only.lower() in case.name.lower()]
        say(f"{len(before)} revisions published; sending {len(cases)} cases")
        mishandled: list[tuple[str, str]] = []
        accepted = 0
        for case in cases:
            why, statuses = await attempt(session, stack, case)
            if why is not None:
                mishandled.append((f"{case.service}: {case.name}", why))
            if case.service == DAEMON:
                accepted += statuses.count(ACCEPTED)
        wrong = await aftermath(session, stack, before, accepted)
    return Outcome(len(cases), mishandled, wrong, time.monotonic() - started)


def command(only: str) -> str:
    return ".venv/bin/python bench/hostile_inputs.py" + (f" --only '{only}'" if only else "")


def report(outcome: Outcome, only: str) -> str:
    lines = [f"{name}: {why}" for name, why in outcome.mishandled]
    lines += [f"afterwards: {wrong}" for wrong in outcome.aftermath]
    lines.append(f"{outcome.tried} tried, {len(outcome.mishandled)} mishandled"
                 f" ({outcome.seconds:.1f} s)")
    if outcome.aftermath:
        lines.append(f"{len(outcome.aftermath)} problems afterwards")
    lines.append(f"reproduce: {command(only)}")
    return "\n".join(lines)


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", default="", help="only the cases whose name contains this")
    parser.add_argument("--keep", type=Path, default=None,
                        help="keep the run's files (logs, home) here; by default they are"
                             " removed, unless a case is mishandled")
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse(argv)
    root = args.keep or Path(tempfile.mkdtemp(prefix="charon-hostile-"))
    outcome = anyio.run(run, root, args.only, lambda line: print(line, flush=True))
    print(report(outcome, args.only), flush=True)
    if outcome.ok and args.keep is None:
        shutil.rmtree(root, ignore_errors=True)
    elif args.keep is None:
        print(f"the services' logs are kept for a look: {root / 'logs'}")
    return 0 if outcome.ok else 1


if __name__ == "__main__":
    sys.exit(main())
