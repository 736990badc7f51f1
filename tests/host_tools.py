"""The hosts' own tools, as ``.ci/host-tools/install`` puts them: netlify-cli, vercel and
wrangler from npm, and a Python 3.12 (the Vercel and Lambda runtimes' Python) with AWS's Lambda
runtime interface client. Each test that needs one skips without it, and fails in CI."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .servers import Server, free_port, serve, unavailable

TOOLS = Path(os.environ.get("ONDEMAND_HOST_TOOLS") or Path(__file__).parents[1] / ".ci/host-tools")
_INSTALL = "run .ci/host-tools/install"


def npm_tool(name: str) -> Path:
    """The command ``name`` of the npm packages in package.json there."""
    path = TOOLS / "node_modules/.bin" / name
    if not path.exists():
        unavailable(f"{name} is not installed in {TOOLS} ({_INSTALL}); CI runs these tests")
    return path


def python312() -> Path:
    """The Python 3.12 of the host tools, with awslambdaric."""
    path = TOOLS / "python3.12/bin/python"
    if not path.exists():
        unavailable(f"no Python 3.12 in {TOOLS} ({_INSTALL}); CI runs these tests")
    return path


def python312_base() -> Path:
    """The Python 3.12 interpreter itself, without the host tools' packages: what Vercel's
    launcher runs on, with nothing but the function's own files."""
    home = (python312().parent.parent / "pyvenv.cfg").read_text()
    folder = next(line.split("=", 1)[1].strip() for line in home.splitlines() if "home" in line)
    return Path(folder) / "python3.12"


@contextmanager
def netlify_dev(publish: Path, *, cwd: Path) -> Iterator[Server]:
    """Serve a publish folder with ``netlify dev``, offline, as the README says it runs here.

    Without ``--internal-disable-edge-functions`` it dies fetching the edge runtime.
    """
    port = free_port()
    command = [str(npm_tool("netlify")), "dev", "--offline", "--internal-disable-edge-functions"]
    command += ["--dir", str(publish), "--port", str(port), "--no-open"]
    env = {"BROWSER": "none", "NETLIFY_TELEMETRY_DISABLED": "1", "CI": "1"}
    cwd.mkdir(parents=True, exist_ok=True)
    with serve(command, cwd=cwd, env=env, ready=rf"(?:localhost|127\.0\.0\.1):({port})") as server:
        yield server


@contextmanager
def wrangler_dev(config: Path, *, cwd: Path, variables: dict[str, str]) -> Iterator[Server]:
    """Serve a Wrangler project with ``wrangler dev`` (workerd, local)."""
    port = free_port()
    command = [str(npm_tool("wrangler")), "dev", "--config", str(config), "--ip", "127.0.0.1"]
    command += ["--port", str(port), "--persist-to", str(cwd / ".wrangler-state")]
    for name, value in variables.items():
        command += ["--var", f"{name}:{value}"]
    env = {"WRANGLER_SEND_METRICS": "false", "CI": "1", "NO_COLOR": "1"}
    cwd.mkdir(parents=True, exist_ok=True)
    with serve(
        command, cwd=cwd, env=env, ready=rf"Ready on http://127\.0\.0\.1:({port})"
    ) as server:
        yield server
