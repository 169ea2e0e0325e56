"""Run the deploy API: ``DEPLOY_API_TOKEN=... python -m tests.deploy_api [--port 0]``.

The token comes from the environment, never an argument (arguments are visible to every
user in ``ps``). Port 0 takes a free port; the first line on stdout says which one:
``deploy-api listening on http://127.0.0.1:PORT``. SIGTERM or SIGINT stop it.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import socket
import sys

from aiohttp import web

from tests.deploy_api.app import DeployApi

TOKEN_ENV = "DEPLOY_API_TOKEN"


async def serve(host: str, port: int, token: str) -> None:
    runner = web.AppRunner(DeployApi(token).app(), handle_signals=False, shutdown_timeout=1.0)
    await runner.setup()
    # Bind the socket here to learn the port the kernel chose for port 0.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    bound = sock.getsockname()[1]
    await web.SockSite(runner, sock).start()
    print(f"deploy-api listening on http://{host}:{bound}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.deploy_api", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0 (the default): any free port")
    args = parser.parse_args(argv)
    token = os.environ.get(TOKEN_ENV, "")
    if not token:
        print(f"error: set {TOKEN_ENV} to the bearer token the API accepts", file=sys.stderr)
        return 2
    asyncio.run(serve(args.host, args.port, token))
    return 0


if __name__ == "__main__":
    sys.exit(main())
