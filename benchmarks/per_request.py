"""The cost of one request in one process, with no server or socket: microseconds per call of a
WSGI app, for the on-demand page against the plain app (the same app without flask_ondemand).

Usage: python per_request.py DIR [URL] [--count N] [--rounds R] [--profile SIDE]

DIR is a build of the benchmark site (``flask ondemand build``). Each side runs in a fresh
interpreter, as each is a different app: ``plain`` (BENCH_ONDEMAND=0), ``full`` (with OnDemand,
not built), ``built`` (DIR/server.py's app) and ``slim`` (the slim app alone, without the file
server in front). Prints one line per side: the median and the fastest of R rounds of N calls.
``--profile SIDE`` prints cProfile's top entries for that side instead.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIDES = ("plain", "full", "built", "slim")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", type=Path)
    parser.add_argument("url", nargs="?", default="/live/")
    parser.add_argument("--count", type=int, default=20_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--side", choices=SIDES, help="measure this side, in this process")
    parser.add_argument("--profile", choices=SIDES)
    options = parser.parse_args()
    if options.side or options.profile:
        app = load(options.profile or options.side, options.build.resolve())
        if options.profile:
            profile(app, options.url, options.count)
        else:
            print(json.dumps(measure(app, options.url, options.count, options.rounds)))
        return
    for side in SIDES:
        command = [sys.executable, __file__, str(options.build), options.url, "--side", side]
        command += ["--count", str(options.count), "--rounds", str(options.rounds)]
        env = {**os.environ, "BENCH_ONDEMAND": "0" if side == "plain" else "1"}
        output = subprocess.run(
            command, cwd=HERE, env=env, capture_output=True, text=True, check=True
        ).stdout
        result = json.loads(output)
        print(f"{side:6} median {result['median']:6.1f} us   fastest {result['fastest']:6.1f} us")


def load(side: str, build: Path) -> Any:
    """The WSGI app of one side."""
    sys.path.insert(0, str(HERE))
    if side in ("plain", "full"):
        import benchsite

        return benchsite.create_app()
    from flask_ondemand.loader import load_build

    site = load_build(build / "server.py")
    return site if side == "built" else site.app


def measure(app: Any, url: str, count: int, rounds: int) -> dict[str, float]:
    once = caller(app, url)
    for _ in range(count // 10):  # warm up: templates compiled, paths learnt
        once()
    runs = []
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for _ in range(count):
            once()
        runs.append((time.perf_counter_ns() - start) / count / 1000)
    return {"median": statistics.median(runs), "fastest": min(runs)}


def caller(app: Any, url: str) -> Any:
    """One GET of ``url`` as a WSGI server makes it: a fresh environ, the body read, closed."""
    from werkzeug.test import EnvironBuilder

    environ = EnvironBuilder(path=url, headers={"User-Agent": "wrk"}).get_environ()

    def start_response(status: str, headers: list[Any], exc_info: object = None) -> None:
        assert status.startswith("200"), status

    def once() -> None:
        body = app(dict(environ), start_response)
        for _ in body:
            pass
        close = getattr(body, "close", None)
        if close is not None:
            close()

    return once


def profile(app: Any, url: str, count: int) -> None:
    import cProfile
    import pstats

    once = caller(app, url)
    for _ in range(count // 10):
        once()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        once()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main()
