"""The cost of one request in one process, with no server or socket: microseconds per call of a
WSGI app, for the on-demand page against the plain app (the same app without flask_ondemand).

Usage: python per_request.py DIR [URL] [--count N] [--rounds R] [--profile SIDE]

DIR is a build of the benchmark site (``flask ondemand build``). The sides, all in this
process: ``plain`` (the site with BENCH_ONDEMAND=0), ``full`` (with OnDemand, not built),
``built`` (DIR/server.py's app) and ``slim`` (the slim app alone, without the file server in
front). Each round calls every side N times, in a rotating order, so that the machine's drift
falls on all of them alike; the median of R rounds is printed, with each side's median ratio
to ``plain`` over the same rounds. ``--profile SIDE`` prints cProfile's top entries instead.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
SIDES = ("plain", "full", "built", "slim")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("build", type=Path)
    parser.add_argument("url", nargs="?", default="/live/")
    parser.add_argument("--count", type=int, default=2_000)
    parser.add_argument("--rounds", type=int, default=31)
    parser.add_argument("--profile", choices=SIDES)
    options = parser.parse_args()
    if options.profile:
        profile(load(options.profile, options.build.resolve()), options.url, options.count)
        return
    calls = {side: caller(load(side, options.build.resolve()), options.url) for side in SIDES}
    for once in calls.values():  # warm up: templates compiled, paths learnt
        for _ in range(options.count):
            once()
    times: dict[str, list[float]] = {side: [] for side in SIDES}
    for round_ in range(options.rounds):
        for side in SIDES[round_ % len(SIDES) :] + SIDES[: round_ % len(SIDES)]:
            times[side].append(timed(calls[side], options.count))
    for side in SIDES:
        ratios = [plain / mine for plain, mine in zip(times["plain"], times[side], strict=True)]
        print(
            f"{side:6} median {statistics.median(times[side]):6.1f} us"
            f"   fastest {min(times[side]):6.1f} us"
            f"   plain/{side} {statistics.median(ratios):.3f}x"
        )


def load(side: str, build: Path) -> Any:
    """The WSGI app of one side: a new app, made as that side makes it."""
    sys.path.insert(0, str(HERE))
    os.environ["BENCH_ONDEMAND"] = "0" if side == "plain" else "1"
    if side in ("plain", "full"):
        import benchsite

        return benchsite.create_app()
    from flask_ondemand.loader import load_build

    site = load_build(build / "server.py")
    return site if side == "built" else site.app


def timed(once: Callable[[], None], count: int) -> float:
    """Microseconds per call, over ``count`` calls."""
    start = time.perf_counter_ns()
    for _ in range(count):
        once()
    return (time.perf_counter_ns() - start) / count / 1000


def caller(app: Any, url: str) -> Callable[[], None]:
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
    for _ in range(count):
        once()
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(count):
        once()
    profiler.disable()
    pstats.Stats(profiler).sort_stats("tottime").print_stats(40)


if __name__ == "__main__":
    main()
