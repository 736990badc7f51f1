"""Build faults: a build interrupted, killed, out of disk, or facing a read-only folder.

In each case the previous build stays byte for byte, no temporary folder is left, and the
message says what happened.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from ..servers import flask, snapshot, unavailable

FLASK = Path(sys.executable).parent / "flask"


def leftovers(out: Path) -> list[Path]:
    return [path for path in (out / ".builds").iterdir() if path.name.endswith(".tmp")]


# Runs a command with SIGINT at its default disposition. A test run started in the background
# (`nohup`, `&`, some CI runners) ignores SIGINT, and a build would inherit that: it would never
# see the Ctrl+C it is sent. exec keeps a default disposition, and Python then makes SIGINT a
# KeyboardInterrupt, as in a terminal.
WITH_DEFAULT_SIGINT = (
    "import os, signal, sys; signal.signal(signal.SIGINT, signal.SIG_DFL);"
    " os.execv(sys.argv[1], sys.argv[1:])"
)


@contextmanager
def slow_build(project: Path, out: Path) -> Iterator[subprocess.Popen[str]]:
    """Start a build with a page that takes two minutes, and wait until its workers render:
    until the new build's /about/ (version 2) is written. Kill it at the end if it still runs."""
    command = [str(FLASK), "--app", "testsite:create_app()", "ondemand", "build", "--out", str(out)]
    process = subprocess.Popen(
        [sys.executable, "-c", WITH_DEFAULT_SIGINT, *command],
        cwd=project,
        env={**os.environ, "SITE_BREAK": "slow", "SITE_VERSION": "2"},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )

    def rendering() -> bool:
        for folder in leftovers(out):
            about = folder / "client/about/index.html"
            try:
                if about.read_text() == "About, version 2":
                    return True
            except OSError:
                continue
        return False

    try:
        deadline = time.monotonic() + 60
        while not rendering():
            assert process.poll() is None, process.communicate()
            assert time.monotonic() < deadline, "the build never started rendering"
            time.sleep(0.02)
        yield process
    finally:
        if process.poll() is None:
            process.kill()
            process.communicate()


def wait_until(condition, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + 30
    while not condition():
        assert time.monotonic() < deadline, what
        time.sleep(0.05)


def test_interrupted_build(project: Path) -> None:
    out = project / "dist"
    flask(project, "ondemand", "build")
    before = snapshot(out)
    with slow_build(project, out) as process:
        process.send_signal(signal.SIGINT)  # Ctrl+C
        _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0
    assert "Aborted" in stderr
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_killed_build(project: Path) -> None:
    out = project / "dist"
    flask(project, "ondemand", "build")
    before = snapshot(out)
    with slow_build(project, out) as process:
        process.kill()  # SIGKILL: the build itself gets no chance to clean up
        process.communicate(timeout=60)
    wait_until(lambda: leftovers(out) == [], "the killed build's folder was not removed")
    assert snapshot(out) == before
    # The folder is usable right away: nothing holds its lock.
    flask(project, "ondemand", "build", env={"SITE_VERSION": "3"})
    assert (out / "client/about/index.html").read_text() == "About, version 3"


def test_a_killed_first_build_leaves_no_folder(project: Path) -> None:
    out = project / "dist"
    command = [str(FLASK), "--app", "testsite:create_app()", "ondemand", "build"]
    process = subprocess.Popen(command, cwd=project, env={**os.environ, "SITE_BREAK": "slow"})
    wait_until(lambda: (out / ".builds").is_dir() and leftovers(out), "the build never started")
    process.kill()
    process.wait(60)
    wait_until(lambda: not out.exists(), "the killed first build left its folder")


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    """A 1 MiB tmpfs: mounting needs root, which CI has."""
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=1m", "tmpfs", str(disk)], capture_output=True
    )
    if mounted.returncode != 0:
        unavailable(f"cannot mount a tmpfs here: {mounted.stderr.decode().strip()}")
    try:
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=True)


def test_out_of_disk(project: Path, small_disk: Path) -> None:
    out = small_disk / "dist"
    flask(project, "ondemand", "build", "--out", str(out))
    before = snapshot(out)
    result = flask(
        project, "ondemand", "build", "--out", str(out), env={"SITE_BREAK": "big"}, check=False
    )
    assert result.returncode == 1
    assert "No space left on device" in result.stderr
    assert f"cannot write the build into {out}" in result.stderr
    assert "Nothing was changed there." in result.stderr
    assert snapshot(out) == before
    assert leftovers(out) == []


def test_read_only_folder(project: Path, small_disk: Path) -> None:
    out = small_disk / "dist"
    flask(project, "ondemand", "build", "--out", str(out))
    before = snapshot(out)
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True)
    result = flask(project, "ondemand", "build", "--out", str(out), check=False)
    assert result.returncode == 1
    assert "Read-only file system" in result.stderr
    assert snapshot(out) == before
