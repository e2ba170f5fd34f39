"""``reconciler serve``: serve the driver store over HTTP until SIGINT or SIGTERM."""

from __future__ import annotations

import argparse
import signal
import threading
from types import FrameType

from reconciler import logs, runtime, settings
from reconciler.httpd.server import ServerConfig

_log = logs.get("reconciler.serve")


ONE_SHOT = False  # runs until a signal: a normal exit


def register(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    p = sub.add_parser(
        "serve", help="serve the driver store over HTTP (DRIVERS_REPO for Falco)",
        description="Serve the driver store at /<driverVersion>/<arch>/<file>, as Falco's "
        "loaders download it, plus /index.json and /healthz. Port 0 picks a free port.",
    )
    settings.add_flags(p, "store", "listen")
    p.add_argument("--workers", type=int, default=ServerConfig.workers,
                   help=f"worker threads (default: {ServerConfig.workers})")
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    conf = settings.resolve(args)
    server = runtime.driver_server(runtime.open_store(conf), conf.listen_address,
                                   workers=args.workers)
    stop = threading.Event()

    def on_signal(signum: int, _frame: FrameType | None) -> None:
        _log.info("serve.signal", signal=signal.Signals(signum).name)
        stop.set()

    previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        server.start()
        if not server.store_readable():
            _log.warning("serve.store_unreadable", store=str(conf.store),
                         hint="healthz answers 503 until the folder exists and is readable")
        print(f"serving {conf.store} on {server.url}", flush=True)
        while not stop.wait(1.0):
            pass
    finally:
        server.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return 0
