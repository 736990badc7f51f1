"""The benchmarks: flask_ondemand side by side with its baselines, as ratios, on this machine.

    python benchmarks/run.py [--pages N] [--rounds R] [--seconds S]

It needs what ``pip install -e '.[bench]'`` installs, and Debian's wrk and nginx. It prints one
table: each figure, the baseline measured beside it, the ratio, and the target. Every figure is
the median of R rounds, because this machine's speed drifts: builds alternate the two sides
(the disk above all drifts: see the note on builds), and servers are loaded together with
their baseline (see :func:`compare`).

Builds write into a tmpfs (/dev/shm) when there is one: creating 10,000 files on this
machine's disk takes from 0.3 s to 7 s depending on what the disk did before, for both
builders alike, which would measure the disk rather than the builders. ``--disk`` builds on
disk instead.
"""

from __future__ import annotations

import argparse
import filecmp
import json
import os
import platform
import re
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
BIN = Path(sys.executable).parent
ROWS: list[tuple[str, str, str, str, str, bool | None]] = []


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=int, default=5, help="per wrk run")
    parser.add_argument("--disk", action="store_true", help="build on disk, not in a tmpfs")
    parser.add_argument(
        "--only",
        choices=["cache"],
        help="only these rows: 'cache', the route cache's (6), on one build made for them",
    )
    options = parser.parse_args()
    os.environ["BENCH_PAGES"] = str(options.pages)
    base = None if options.disk or not Path("/dev/shm").is_dir() else "/dev/shm"
    with tempfile.TemporaryDirectory(prefix="ondemand-bench-", dir=base) as folder:
        work = Path(folder)
        if options.only == "cache":
            ours_out = work / "ours"
            measure(ondemand_build(ours_out))
        else:
            whole_builds, ours_out = builds(work, options)
            partial(work, whole_builds, options)
            cold_start(ours_out, options)
            serving(work, ours_out, options)
        cache_rows(work, ours_out, options)
    report(options, "tmpfs" if base else "disk")


# Builds


def builds(work: Path, options: argparse.Namespace) -> tuple[list[dict[str, float]], Path]:
    """Target 1 (throughput) and 5 (memory): whole processes, into empty folders."""
    frozen, ours = [], []
    for round_ in range(options.rounds):
        runs = [("frozen", frozen), ("ours", ours)]
        for side, results in runs if round_ % 2 == 0 else runs[::-1]:
            out = work / f"{side}-{round_}"
            if side == "frozen":
                command = [sys.executable, str(HERE / "frozen_flask_build.py"), str(out)]
            else:
                command = ondemand_build(out)
            results.append(measure(command))
    ours_out = work / f"ours-{options.rounds - 1}"
    check_same_files(work / f"frozen-{options.rounds - 1}", ours_out / "client")
    frozen_s = statistics.median(r["seconds"] for r in frozen)
    ours_s = statistics.median(r["seconds"] for r in ours)
    pages = f"{options.pages:,} pages"
    row(
        f"1. Build, {pages} (whole process)",
        f"{ours_s:.2f} s",
        f"Frozen-Flask {frozen_s:.2f} s",
        frozen_s / ours_s,
        ">= 3.0x faster",
        frozen_s / ours_s >= 3.0,
    )
    frozen_rss = statistics.median(r["peak_rss_kib"] for r in frozen) / 1024
    ours_rss = statistics.median(r["peak_rss_kib"] for r in ours) / 1024
    row(
        "5. Build peak RSS (largest process)",
        f"{ours_rss:.0f} MiB",
        f"Frozen-Flask {frozen_rss:.0f} MiB",
        ours_rss / frozen_rss,
        "<= 2.0x",
        ours_rss / frozen_rss <= 2.0,
    )
    return ours, ours_out


def check_same_files(frozen: Path, ours: Path) -> None:
    """Our files must be Frozen-Flask's, byte for byte. Frozen-Flask also freezes /live/ and
    /cached/ (on demand for us), and we add precompressed siblings."""
    ours_files = {
        p.relative_to(ours)
        for p in ours.rglob("*")
        if p.is_file() and p.suffix not in (".gz", ".br")
    }
    frozen_files = {p.relative_to(frozen) for p in frozen.rglob("*") if p.is_file()} - {
        Path("live/index.html"),
        Path("cached/index.html"),
    }
    if ours_files != frozen_files:
        sys.exit(f"the builds differ in files: {sorted(ours_files ^ frozen_files)[:5]}")
    _, mismatch, errors = filecmp.cmpfiles(
        frozen, ours, [str(p) for p in ours_files], shallow=False
    )
    if mismatch or errors:
        sys.exit(f"the builds differ in content: {(mismatch + errors)[:5]}")


def partial(work: Path, whole_builds: list[dict[str, float]], options: argparse.Namespace) -> None:
    """Target 2: one page re-rendered with --only, against the whole builds of target 1.

    Both sides are timed as the command reports it ("Built DIR in 0.05 s"): from the app
    loaded to the build swapped in. A whole process also starts Python and imports Flask and
    the app, the same fixed cost for any build (``python -c "import flask"`` alone takes
    about 0.16 s here, more than a twentieth of a whole build): that ratio is reported too.
    """
    out, page = work / "partial", f"/page/{options.pages // 2}/"
    measure(ondemand_build(out))  # its own folder: the serving benchmarks need a whole build
    runs = [measure(ondemand_build(out, "--only", page)) for _ in range(options.rounds)]
    for figure, key, target in (
        (f"2. Partial build, --only {page} (in the command)", "build_seconds", 20.0),
        ("2b. Partial build, whole process", "seconds", None),
    ):
        whole = statistics.median(run[key] for run in whole_builds)
        seconds = statistics.median(run[key] for run in runs)
        row(
            figure,
            f"{seconds:.2f} s",
            f"whole build {whole:.2f} s",
            whole / seconds,
            f">= {target:.0f}x faster" if target else "(reported)",
            whole / seconds >= target if target else None,
        )


def ondemand_build(out: Path, *options: str) -> list[str]:
    """The command line of ``flask ondemand build`` for the benchmark site."""
    flask = str(BIN / "flask")
    return [
        flask,
        "--app",
        "benchsite:create_app",
        "ondemand",
        "build",
        "--out",
        str(out),
        *options,
    ]


def measure(command: list[str]) -> dict[str, float]:
    return json.loads(run_script("measure.py", *command))  # type: ignore[no-any-return]


def run_script(script: str, *args: str, env: dict[str, str] | None = None) -> str:
    """Run one of the scripts beside this one; return what it printed."""
    command = [sys.executable, str(HERE / script), *args]
    return subprocess.run(
        command,
        cwd=HERE,
        capture_output=True,
        text=True,
        check=True,
        env={**os.environ, **(env or {})},
    ).stdout


# Cold start


def cold_start(ours_out: Path, options: argparse.Namespace) -> None:
    """Target 4: a fresh interpreter to its first answer, built server against the plain app."""
    built, plain = [], []
    for _ in range(max(options.rounds, 5) * 3):
        for results, args in (
            (built, ["built", str(ours_out), "/live/"]),
            (plain, ["plain", "/live/"]),
        ):
            results.append(float(run_script("cold_start.py", *args)))
    ours_s, plain_s = statistics.median(built), statistics.median(plain)
    row(
        "4. Cold start: import server.py, first answer",
        f"{ours_s * 1000:.0f} ms",
        f"plain app {plain_s * 1000:.0f} ms",
        ours_s / plain_s,
        "<= 1.2x",
        ours_s / plain_s <= 1.2,
    )


# Serving


def serving(work: Path, ours_out: Path, options: argparse.Namespace) -> None:
    """Target 3: requests per second under wrk, against each baseline loaded at the same time
    (see :func:`compare`); gunicorn's worker types one at a time, each alone on the machine.

    The plain app is the benchmark site without flask_ondemand (``BENCH_ONDEMAND=0``): the app
    as its user would serve it without the extension, rendering every page per request.
    """
    page, live = f"/page/{options.pages // 2}/", "/live/"
    client = ours_out / "current" / "client"
    whitenoise = gunicorn_server("whitenoise_only:app", HERE, env={"BENCH_CLIENT": str(client)})
    ours = gunicorn_server("server:app", ours_out)
    plain = gunicorn_server("benchsite:create_app()", HERE, env={"BENCH_ONDEMAND": "0"})

    static, baseline, ratio = compare(ours, whitenoise, page, options)
    row(
        "3a. Prerendered page, gunicorn 2 sync workers",
        f"{static:,.0f} rps",
        f"WhiteNoise alone {baseline:,.0f} rps",
        ratio,
        ">= 0.9x",
        ratio >= 0.9,
    )
    static, rendering, ratio = compare(ours, plain, page, options)
    row(
        "3b. Prerendered page vs rendering it per request",
        f"{static:,.0f} rps",
        f"plain app {rendering:,.0f} rps",
        ratio,
        "(reported)",
        None,
    )
    dynamic, baseline, ratio = compare(ours, plain, live, options)
    row(
        "3c. On-demand page through the slim app",
        f"{dynamic:,.0f} rps",
        f"plain app {baseline:,.0f} rps",
        ratio,
        ">= 1.0x",
        ratio >= 1.0,
    )
    nginx_rows(work, options, page)
    worker_rows(ours_out, live, options)


def nginx_rows(work: Path, options: argparse.Namespace, page: str) -> None:
    if shutil.which("nginx", path=f"{os.environ['PATH']}:/usr/sbin") is None:
        row("3d. nginx adapter", "skipped", "nginx is not installed", None, ">= 0.9x", None)
        return
    listen, upstream = free_port(), free_port()
    out = work / "nginx-build"
    env = {
        **os.environ,
        "FLASK_ONDEMAND_NGINX_LISTEN": f'"127.0.0.1:{listen}"',
        "FLASK_ONDEMAND_NGINX_UPSTREAM": f'"127.0.0.1:{upstream}"',
    }
    command = ondemand_build(out, "--adapter", "nginx")
    subprocess.run(command, cwd=HERE, env=env, check=True, capture_output=True)
    raw_port = free_port()
    raw_conf = work / "raw-nginx.conf"
    raw_conf.write_text(
        "worker_processes auto; pid raw.pid; error_log raw-error.log;\n"
        "events { worker_connections 1024; }\n"
        f"http {{ include /etc/nginx/mime.types; access_log raw-access.log;\n"
        f"  server {{ listen 127.0.0.1:{raw_port}; root {out}/client; index index.html; }} }}\n"
    )
    ours = nginx_server(out / "nginx.conf", work / "nginx-ours", listen)
    raw = nginx_server(raw_conf, work / "nginx-raw", raw_port)
    with gunicorn_server("server:app", out, port=upstream)() as _:  # running, and untouched
        mine, baseline, ratio = compare(ours, raw, page, options)
    row(
        "3d. Prerendered page, nginx adapter",
        f"{mine:,.0f} rps",
        f"raw nginx {baseline:,.0f} rps",
        ratio,
        ">= 0.9x",
        ratio >= 0.9,
    )


def worker_rows(ours_out: Path, live: str, options: argparse.Namespace) -> None:
    """gunicorn's worker types on the on-demand page, for the README's recommendation."""
    kinds = {
        "sync, 2 workers": ["--workers", "2"],
        "sync, 4 workers": ["--workers", "4"],
        "gthread, 2 workers x 4 threads": [
            "--workers",
            "2",
            "--worker-class",
            "gthread",
            "--threads",
            "4",
        ],
        "gthread, 4 workers x 2 threads": [
            "--workers",
            "4",
            "--worker-class",
            "gthread",
            "--threads",
            "2",
        ],
    }
    results = {}
    for name, extra in kinds.items():
        results[name] = statistics.median(
            wrk(gunicorn_server("server:app", ours_out, extra=extra), live, options)
            for _ in range(options.rounds)
        )
    sync = results["sync, 2 workers"]
    for name, rps in results.items():
        row(
            f"3e. On-demand page, gunicorn {name}",
            f"{rps:,.0f} rps",
            f"sync, 2 workers {sync:,.0f} rps",
            rps / sync,
            "(reported)",
            None,
        )


def cache_rows(work: Path, ours_out: Path, options: argparse.Namespace) -> None:
    """Target 6: a cached on-demand page (/cached/, the on-demand page with ``cache``) against
    a prerendered page of the same build, each through its own gunicorn (2 sync workers),
    loaded at once; the same with the Redis store; and the hit path in one process."""
    page = f"/page/{options.pages // 2}/"
    ours = gunicorn_server("server:app", ours_out)
    cached, static, ratio = compare(ours, ours, "/cached/", options, baseline_path=page)
    row(
        "6a. Cached on-demand page (folder store), gunicorn 2 sync workers",
        f"{cached:,.0f} rps",
        f"prerendered page {static:,.0f} rps",
        ratio,
        ">= 0.9x",
        ratio >= 0.9,
    )
    hit = json.loads(run_script("hit_path.py", str(ours_out), "/cached/", page))
    row(
        "6c. Hit path in one process, folder store",
        f"{hit['cached_us']:.0f} us",
        f"prerendered page {hit['file_us']:.0f} us",
        hit["cached_us"] / hit["file_us"],
        "(reported)",
        None,
    )
    if shutil.which("redis-server") is None:
        row("6b. Cached page, Redis store", "skipped", "no redis-server", None, "", None)
        return
    with redis_server(work) as url:
        on_redis = gunicorn_server("server:app", ours_out, env={"FLASK_ONDEMAND_CACHE_URL": url})
        redis_rps, folder_rps, ratio = compare(on_redis, ours, "/cached/", options)
        row(
            "6b. Cached page, Redis store (same machine)",
            f"{redis_rps:,.0f} rps",
            f"folder store {folder_rps:,.0f} rps",
            ratio,
            "(reported)",
            None,
        )
        env = {"FLASK_ONDEMAND_CACHE_URL": url}
        hit = json.loads(run_script("hit_path.py", str(ours_out), "/cached/", page, env=env))
        row(
            "6d. Hit path in one process, Redis store",
            f"{hit['cached_us']:.0f} us",
            f"prerendered page {hit['file_us']:.0f} us",
            hit["cached_us"] / hit["file_us"],
            "(reported)",
            None,
        )


@contextmanager
def redis_server(work: Path) -> Iterator[str]:
    """Debian's redis-server on a free loopback port, keeping nothing on disk."""
    port = free_port()
    command = ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    command += ["--appendonly", "no", "--dir", str(work)]
    with running(command, port, cwd=work):
        yield f"redis://127.0.0.1:{port}/0"


def gunicorn_server(
    app: str,
    chdir: Path,
    *,
    env: dict[str, str] | None = None,
    port: int | None = None,
    extra: list[str] | None = None,
) -> Callable[[], Iterator[int]]:
    @contextmanager
    def started() -> Iterator[int]:
        bound = port or free_port()
        command = [
            str(BIN / "gunicorn"),
            "--chdir",
            str(chdir),
            app,
            "--bind",
            f"127.0.0.1:{bound}",
            *(extra or ["--workers", "2"]),
        ]
        with running(command, bound, cwd=HERE, env={**os.environ, **(env or {})}):
            yield bound

    return started


def nginx_server(conf: Path, prefix: Path, port: int) -> Callable[[], Iterator[int]]:
    @contextmanager
    def started() -> Iterator[int]:
        prefix.mkdir(parents=True, exist_ok=True)
        user = " user root;" if os.geteuid() == 0 else ""
        binary = shutil.which("nginx", path=f"{os.environ['PATH']}:/usr/sbin")
        command = [str(binary), "-p", str(prefix), "-c", str(conf), "-g", f"daemon off;{user}"]
        with running(command, port, cwd=prefix):
            yield port

    return started


@contextmanager
def running(command: list[str], port: int, **popen: object) -> Iterator[None]:
    process = subprocess.Popen(
        command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **popen
    )  # type: ignore[call-overload]
    try:
        deadline = time.monotonic() + 30
        while not accepts(port):
            if process.poll() is not None or time.monotonic() > deadline:
                sys.exit(f"{' '.join(command)} did not start")
            time.sleep(0.05)
        yield
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(30)


def compare(
    ours: Callable[[], Iterator[int]],
    baseline: Callable[[], Iterator[int]],
    path: str,
    options: argparse.Namespace,
    *,
    baseline_path: str | None = None,
) -> tuple[float, float, float]:
    """Median rps of each and median ratio, over rounds that load both servers at once, each
    with its own wrk.

    Loaded one after the other, the same two servers measured anywhere from 0.8x to 1.3x of
    each other on this machine from one round to the next: a server alone gets whatever the
    machine has at that moment. Loaded together, both share the same moment and split the two
    cores, so the ratio of their rates is that of their costs per request (0.92x to 1.02x from
    round to round). The rates are then each about half of what a server alone reaches.
    """
    mine, theirs, ratios = [], [], []
    for _ in range(options.rounds):
        with ours() as our_port, baseline() as their_port:
            urls = [
                f"http://127.0.0.1:{our_port}{path}",
                f"http://127.0.0.1:{their_port}{baseline_path or path}",
            ]
            for url in urls:
                subprocess.run(["wrk", "-t1", "-c8", "-d1s", url], capture_output=True, check=True)
            ours_rps, theirs_rps = wrk_at_once(urls, options, threads=1, connections=16)
        mine.append(ours_rps)
        theirs.append(theirs_rps)
        ratios.append(ours_rps / theirs_rps)
    return statistics.median(mine), statistics.median(theirs), statistics.median(ratios)


def wrk(server: Callable[[], Iterator[int]], path: str, options: argparse.Namespace) -> float:
    """The rps of one server alone on the machine."""
    with server() as port:
        url = f"http://127.0.0.1:{port}{path}"
        subprocess.run(
            ["wrk", "-t1", "-c8", "-d1s", url], capture_output=True, check=True
        )  # warm up
        (rps,) = wrk_at_once([url], options, threads=2, connections=32)
    return rps


def wrk_at_once(
    urls: list[str], options: argparse.Namespace, *, threads: int, connections: int
) -> list[float]:
    """Load each URL with its own wrk, all at the same time; return their rps."""
    command = ["wrk", f"-t{threads}", f"-c{connections}", f"-d{options.seconds}s"]
    runs = [subprocess.Popen([*command, url], stdout=subprocess.PIPE, text=True) for url in urls]
    rates = []
    for url, run in zip(urls, runs, strict=True):
        output, _ = run.communicate()
        if run.returncode or "Non-2xx or 3xx responses" in output:
            sys.exit(f"wrk saw errors on {url}:\n{output}")
        rates.append(float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)))  # type: ignore[union-attr]
    return rates


def accepts(port: int) -> bool:
    with socket.socket() as probe:
        return probe.connect_ex(("127.0.0.1", port)) == 0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


# Report


def row(
    figure: str, ours: str, baseline: str, ratio: float | None, target: str, passed: bool | None
) -> None:
    ROWS.append(
        (figure, ours, baseline, f"{ratio:.2f}x" if ratio is not None else "", target, passed)
    )
    print(f"  {figure}: {ours} / {baseline}", file=sys.stderr, flush=True)


def report(options: argparse.Namespace, where: str) -> None:
    cpu = next(
        (
            line.split(":", 1)[1].strip()
            for line in Path("/proc/cpuinfo").read_text().splitlines()
            if line.startswith("model name")
        ),
        platform.processor(),
    )
    print(
        f"Machine: {os.cpu_count()} cores ({cpu}), Python {platform.python_version()},"
        f" builds in a {where}; medians of {options.rounds} rounds. Servers against their"
        f" baseline: both loaded at once, wrk -t1 -c16 -d{options.seconds}s each; worker"
        f" types: alone, wrk -t2 -c32.\n"
    )
    print("| Figure | flask_ondemand | Baseline | Ratio | Target | Met |")
    print("|---|---|---|---|---|---|")
    for figure, ours, baseline, ratio, target, passed in ROWS:
        met = "yes" if passed else "NO" if passed is False else ""
        print(f"| {figure} | {ours} | {baseline} | {ratio} | {target} | {met} |")


if __name__ == "__main__":
    main()
