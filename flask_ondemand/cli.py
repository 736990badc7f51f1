"""``flask ondemand routes | build | revalidate | preview``: thin commands over the routes, build,
route cache and loader."""

from __future__ import annotations

import atexit
import functools
import gc
import os
import runpy
import time
import traceback
import warnings
from collections.abc import Callable, Iterable, Iterator, Sized
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any, TypeVar

import click
from flask import Flask
from flask.cli import ScriptInfo, pass_script_info, with_appcontext

from .adapters import known_adapters
from .build import build
from .caching import route_cache
from .errors import OnDemandError, PageError, PagesFailed
from .extension import get_app, require_ondemand
from .layout import CACHE
from .stores import StoreError

Command = TypeVar("Command", bound=Callable[..., Any])


def _one_line_errors(command: Command) -> Command:
    """Show an :class:`OnDemandError` as click's one line, ``Error: ...``, not a traceback: its
    message names what is wrong and what to do."""

    @functools.wraps(command)
    def run(*args: Any, **kwargs: Any) -> Any:
        try:
            return command(*args, **kwargs)
        except OnDemandError as error:
            raise click.ClickException(str(error)) from None

    return run  # type: ignore[return-value]


@click.group("ondemand")
def ondemand() -> None:
    """Prerender pages, and serve the rest on demand (flask_ondemand)."""


@ondemand.command("routes")
@with_appcontext
@_one_line_errors
def routes_command() -> None:
    """Show each URL rule, whether it is prerendered or on demand, and why."""
    app = get_app()
    routes = sorted(app.extensions["ondemand"].routes(), key=lambda r: (r.rule.rule, r.endpoint))
    rows = [("Rule", "Endpoint", "Methods", "Mode", "Why")]
    for route in routes:
        why = (
            route.reason
            if route.problem is None
            else f"{route.reason}; BUILD FAILS: {route.problem}"
        )
        rows.append(
            (route.rule.rule, route.endpoint, ", ".join(route.methods), route.mode.value, why)
        )
    widths = [max(len(row[column]) for row in rows) for column in range(4)]
    for index, row in enumerate(rows):
        cells = [cell.ljust(width) for cell, width in zip(row, widths, strict=False)]
        click.echo("  ".join([*cells, row[4]]).rstrip())
        if index == 0:
            click.echo("  ".join("-" * width for width in [*widths, len(row[4])]))


def _out_option(function: click.decorators.FC) -> click.decorators.FC:
    return click.option(
        "--out",
        "out_dir",
        type=click.Path(file_okay=False, path_type=Path),
        help="Build folder. Default: ONDEMAND_OUT_DIR, which defaults to 'dist'.",
    )(function)


def _out_dir(app: Flask, out_dir: Path | None) -> Path:
    return out_dir if out_dir is not None else Path(app.config.get("ONDEMAND_OUT_DIR", "dist"))


@ondemand.command("build")
@_out_option
@click.option(
    "--adapter",
    metavar="NAME",
    help=f"What to write for the host: {', '.join(known_adapters())}. Default: ONDEMAND_ADAPTER.",
)
@click.option(
    "--jobs",
    "-j",
    type=click.IntRange(min=1),
    default=os.cpu_count() or 1,
    show_default="the number of cores",
    help="How many processes render pages.",
)
@click.option(
    "--only",
    metavar="PATTERN",
    help="Re-render only the previous build's pages of this endpoint, or whose URL matches"
    " this glob (/blog/*), and keep the others.",
)
@click.option("--verbose", "-v", is_flag=True, help="Show the full traceback when the build fails.")
@pass_script_info
@_one_line_errors
def build_command(
    info: ScriptInfo,
    out_dir: Path | None,
    adapter: str | None,
    jobs: int,
    only: str | None,
    verbose: bool,
) -> None:
    """Prerender pages into OUT/client and write OUT/server.py for the rest.

    The build is atomic: if it fails, OUT is left exactly as it was.
    """
    app = info.load_app()
    require_ondemand(app)
    out = _out_dir(app, out_dir)
    # A build leaves many objects the process exits with: the garbage collector need not go
    # through them all one last time (a fortieth of a 10,000-page build).
    atexit.register(gc.freeze)

    def progress(pages: Iterator[str]) -> AbstractContextManager[Iterable[str]]:
        return click.progressbar(pages, label="Rendering", show_pos=True, item_show_func=str)

    started = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("default")
        try:
            result = build(
                app,
                out,
                app_import=info.app_import_path,
                progress=progress,
                adapter=adapter,
                jobs=jobs,
                only=only,
            )
        except Exception as error:
            _echo_warnings(caught)
            pages = error.errors if isinstance(error, PagesFailed) else [error]
            if verbose and isinstance(error, (PageError, PagesFailed)):
                # The pages' own tracebacks, not the build's, which only reports them.
                for page in pages:
                    if isinstance(page, PageError) and page.trace:
                        click.echo(f"The traceback of {page.url}:\n{page.trace}", err=True)
            elif verbose:
                traceback.print_exception(error)
            # A traceback tells more only about a page's failure or an unexpected error.
            traceback_helps = not isinstance(error, OnDemandError) or any(
                isinstance(page, PageError) and page.trace for page in pages
            )
            hint = (
                " (run with --verbose for the traceback)" if traceback_helps and not verbose else ""
            )
            message = (
                str(error)
                if isinstance(error, OnDemandError)
                else f"{type(error).__name__}: {error}"
            )
            raise click.ClickException(f"build failed: {message}{hint}") from None
    seconds = time.perf_counter() - started
    _echo_warnings(caught)

    manifest = result.manifest
    click.echo(
        f"Built {out} in {seconds:.2f} s: {_count(manifest.files, 'file')}"
        f" ({result.rendered} rendered now), {_count(manifest.redirects, 'redirect')},"
        f" {_count(manifest.on_demand, 'on-demand route')}."
    )
    for entry in result.deployment.entries:
        click.echo(f"Wrote {out / entry}")
    click.echo(f"Deploy:  {result.deployment.instructions}")


def _count(things: Sized, name: str) -> str:
    return f"{len(things)} {name}{'' if len(things) == 1 else 's'}"


def _echo_warnings(caught: list[warnings.WarningMessage]) -> None:
    for warning in caught:
        click.secho(f"Warning: {warning.message}", fg="yellow", err=True)


@ondemand.command("revalidate")
@click.argument("paths", nargs=-1)
@click.option("--tag", "tags", multiple=True, metavar="TAG", help="Purge this tag's pages too.")
@click.option("--all", "everything", is_flag=True, help="Purge every cached page.")
@_out_option
@with_appcontext
def revalidate_command(
    paths: tuple[str, ...], tags: tuple[str, ...], everything: bool, out_dir: Path | None
) -> None:
    """Purge the route cache's pages of PATHS (with any query string) and of each --tag, for
    every worker and machine that shares the store: their next request renders them.

    The store is ONDEMAND_CACHE_URL's, or the build folder's (DIR/cache).
    """
    app = get_app()
    if not (paths or tags or everything):
        raise click.UsageError("give the PATHS or --tag TAG to purge, or --all")
    folder = _out_dir(app, out_dir) / CACHE
    try:
        purged = route_cache(app).purge(
            paths=paths, tags=tags, everything=everything, default_folder=folder
        )
    except ValueError as error:
        raise click.UsageError(str(error)) from None
    except StoreError as error:
        raise click.ClickException(f"revalidate failed: {error}") from None
    click.echo(f"Purged {_count(range(purged), 'cached page')}.")


@ondemand.command("preview")
@_out_option
@click.option("--host", default="127.0.0.1", show_default=True, help="Interface to listen on.")
@click.option("--port", default=5000, show_default=True, help="Port to listen on.")
@pass_script_info
@_one_line_errors
def preview_command(info: ScriptInfo, out_dir: Path | None, host: str, port: int) -> None:
    """Serve a build locally, exactly as production does: through OUT/server.py."""
    from werkzeug.serving import run_simple

    app = info.load_app()
    require_ondemand(app)
    out = _out_dir(app, out_dir)
    entry = out / "server.py"
    if not entry.is_file():
        raise click.ClickException(f"{entry} does not exist. Run `flask ondemand build` first.")
    site = runpy.run_path(str(entry))["app"]  # it checks the app it imports too
    click.echo(f"Previewing {out} through {entry}")
    run_simple(host, port, site, threaded=True)
