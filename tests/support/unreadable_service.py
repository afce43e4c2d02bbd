"""A server that answers every request 200 with JSON nested past what a decoder can
follow, as something that is not the service meant might: ``python -m
tests.support.unreadable_service PORT``. It prints ``serving on URL`` once listening."""

from __future__ import annotations

import asyncio
import sys

from aiohttp import web

from tests.support.fault_proxy import UNREADABLE_ANSWERS

ANSWER = UNREADABLE_ANSWERS["JSON nested 200,000 deep"]


async def answer(_request: web.Request) -> web.Response:
    return web.Response(body=ANSWER, content_type="application/json")


async def main(port: int) -> None:
    app = web.Application()
    app.router.add_route("*", "/{tail:.*}", answer)
    runner = web.AppRunner(app)
    await runner.setup()
    await web.TCPSite(runner, "127.0.0.1", port).start()
    print(f"serving on http://127.0.0.1:{port}", flush=True)
    await asyncio.Event().wait()  # until killed


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1])))
