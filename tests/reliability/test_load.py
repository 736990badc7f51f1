"""Load: gunicorn with 2 workers serving the example build, under a mixed load for 60 s.

wrk sends prerendered pages, static assets, on-demand pages with cookies, a server island,
POSTs (one without the CSRF token its form needs) and 404s.
Expected: no connection errors, no 5xx, no status but those the requests should get, and
worker memory that does not grow by more than 10% from the first 10 s to the last 10 s.
It runs only with pytest's --load option, which CI gives; alone: pytest -m load --load
"""

from __future__ import annotations

import re
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest

from ..servers import flask, gunicorn, island_sources, require, unavailable

ROOT = Path(__file__).parent.parent.parent
SECONDS = 60

SCRIPT = """
local requests = {
  {"GET", "/"}, {"GET", "/about/"}, {"GET", "/blog/hybrid-rendering/"},
  {"GET", "/static/style.css"}, {"GET", "/feed.json"},
  {"GET", "/visits/", {["Cookie"] = "visits=3"}},
  {"GET", "/account/", {["Cookie"] = "session=garbage"}},
  {"GET", "/api/random"}, {"GET", "MENU_ISLAND"},
  {"POST", "/contact/", {["Content-Type"] = "application/x-www-form-urlencoded"}, "name=Ann"},
  {"POST", "/account/login", {["Content-Type"] = "application/x-www-form-urlencoded"}, "name=Bo"},
  {"GET", "/no-such-page/"}, {"GET", "/search/?q=nothing"},
}
counter = 0
statuses = {}
request = function()
  counter = counter + 1
  local r = requests[(counter % #requests) + 1]
  return wrk.format(r[1], r[2], r[3], r[4])
end
response = function(status, headers, body)
  statuses[status] = (statuses[status] or 0) + 1
end
local threads = {}
setup = function(thread) table.insert(threads, thread) end
done = function(summary, latency, requests)
  local totals = {}
  for _, thread in ipairs(threads) do
    for code, n in pairs(thread:get("statuses")) do totals[code] = (totals[code] or 0) + n end
  end
  io.write("STATUSES")
  for code, n in pairs(totals) do io.write(" ", code, "=", n) end
  io.write("\\nERRORS connect=", summary.errors.connect, " read=", summary.errors.read,
           " write=", summary.errors.write, " timeout=", summary.errors.timeout, "\\n")
end
"""


def worker_rss(master: int) -> int:
    """The resident memory of gunicorn's workers, in KiB."""
    total = 0
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            if int(fields[1]) == master:
                status = (stat.parent / "status").read_text()
                total += int(re.search(r"VmRSS:\s+(\d+)", status).group(1))  # type: ignore[union-attr]
        except (OSError, IndexError, AttributeError):
            continue  # a process that ended meanwhile
    return total


@pytest.mark.load
def test_mixed_load(tmp_path: Path, pytestconfig: pytest.Config) -> None:
    if not pytestconfig.getoption("--load"):
        unavailable("the 60-second load test runs only with --load (.ci/run passes it)")
    wrk = require("wrk")
    out = tmp_path / "dist"
    flask(ROOT, "ondemand", "build", "--out", str(out), app="example_app")
    script = tmp_path / "mixed.lua"
    menu = island_sources((out / "client/index.html").read_text())["/account/_menu"]
    script.write_text(SCRIPT.replace("MENU_ISLAND", menu))
    with gunicorn(out, cwd=ROOT) as server:
        samples: list[int] = []
        stop = threading.Event()

        def sample() -> None:
            while not stop.wait(1):
                samples.append(worker_rss(server.process.pid))

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        started = time.monotonic()
        result = subprocess.run(
            [wrk, "-t2", "-c16", f"-d{SECONDS}s", "-s", str(script), server.url],
            capture_output=True,
            text=True,
            timeout=SECONDS + 60,
            check=True,
        )
        stop.set()
        sampler.join()
        assert time.monotonic() - started >= SECONDS
        log = server.log
    statuses = dict(
        pair.split("=") for pair in re.search(r"STATUSES(.*)", result.stdout).group(1).split()
    )  # type: ignore[union-attr]
    # Of the 13 requests wrk cycles through, 1 is answered 303 (sign-in), 1 is answered 400
    # (the contact form without its CSRF token) and 2 are answered 404.
    assert set(statuses) == {"200", "303", "400", "404"}, result.stdout
    counts = {code: int(n) for code, n in statuses.items()}
    assert counts["200"] > 3 * counts["404"] > 3 * counts["400"] > 0
    assert counts["303"] > 0
    assert "ERRORS connect=0 read=0 write=0 timeout=0" in result.stdout, result.stdout
    assert "Traceback" not in log
    assert len(samples) >= SECONDS - 5
    first, last = statistics.mean(samples[:10]), statistics.mean(samples[-10:])
    assert last <= first * 1.10, f"workers grew from {first:.0f} KiB to {last:.0f} KiB"
