"""``flask ondemand build``: freeze the prerendered pages, write the manifest, swap the build in.

A build folder ``DIR`` looks like this::

    DIR/server.py                     WSGI entry point: gunicorn --chdir DIR server:app
    DIR/current -> .builds/<id>       the live build
    DIR/client -> current/client      its prerendered files
    DIR/manifest.json -> current/manifest.json
    DIR/.builds/<id>/                 the live build, and the one before it

A build writes a new ``.builds/<id>.tmp`` folder and, once everything is in it, replaces the
``current`` link with one rename. Until then nothing the server or a reader of ``DIR`` sees has
changed, and a failed build deletes its folder and leaves ``DIR`` as it was. The build before
is kept, so responses already being sent from it can finish.
"""

from __future__ import annotations

import fcntl
import os
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass
from pathlib import Path

from flask import Flask

from .errors import BuildError, ManifestError, NoViewFunctionWarning
from .extension import require_ondemand
from .freezer import FREEZER_KEY, Freezer
from .manifest import MANIFEST_NAME, Manifest, Redirect, RuleEntry
from .routes import Mode

BUILDS = ".builds"
CURRENT = "current"

SERVER_PY = '''\
"""WSGI entry point of a flask_ondemand build, written by `flask ondemand build`.

Serve the site with:  gunicorn --chdir <this folder> server:app
"""

from flask_ondemand.loader import load_build

app = load_build(__file__)
'''


@dataclass(frozen=True)
class BuildResult:
    out_dir: Path
    manifest: Manifest
    #: How many URLs were rendered (pages, endpoints and static files).
    rendered: int


def build(
    app: Flask,
    out_dir: str | os.PathLike[str],
    *,
    app_import: str | None,
    progress: Callable[[Iterator[str]], AbstractContextManager[Iterable[str]]] | None = None,
) -> BuildResult:
    """Build ``app`` into ``out_dir`` atomically.

    :param app_import: how ``DIR/server.py`` imports the app, in ``flask --app`` syntax; None
        for Flask's ``wsgi.py``/``app.py`` discovery. ``ONDEMAND_APP_IMPORT`` overrides it.
    :param progress: wraps the iterator of URLs as they are written, such as
        ``click.progressbar``.
    :raises BuildError: naming the route or URL and the cause; ``out_dir`` is then unchanged.

    Reads ``ONDEMAND_OUTPUT``, ``ONDEMAND_APP_IMPORT`` and the ``FREEZER_*`` keys.
    """
    require_ondemand(app)
    out = Path(out_dir).absolute()
    freezer: Freezer = app.extensions.get(FREEZER_KEY) or Freezer(app)
    rendered = 0
    with _new_build(out) as (staging, previous):
        client = staging / "client"
        if previous is not None and (previous / "client").is_dir():
            shutil.copytree(previous / "client", client, copy_function=_link_or_copy)
        with freezer.destination(client):
            urls = (page.url for page in freezer.freeze_yield())
            with (progress or nullcontext)(urls) as written:
                for _ in written:
                    rendered += 1
        for route in freezer.routes:
            if route.mode is Mode.NOT_SERVED:
                warnings.warn(
                    f"{route.describe()} has no view function: it is not prerendered,"
                    " and the server answers 404 for it.",
                    NoViewFunctionWarning,
                    stacklevel=2,
                )
        manifest = _manifest(
            freezer,
            client,
            previous=_read_previous(previous),
            app_import=app.config.get("ONDEMAND_APP_IMPORT") or app_import,
            project_root=os.path.relpath(Path.cwd(), out),
        )
        manifest.write(staging / MANIFEST_NAME)
    return BuildResult(out, manifest, rendered)


def _manifest(
    freezer: Freezer,
    client: Path,
    *,
    previous: Manifest | None,
    app_import: str | None,
    project_root: str,
) -> Manifest:
    manifest = Manifest(app_import=app_import, project_root=project_root)
    rendered = {url: page for url, page in freezer.pages.items() if not page.kept}
    if previous is not None:
        # Files kept from the previous build (FREEZER_SKIP_EXISTING, or not removed because
        # FREEZER_REMOVE_EXTRA_FILES is off) keep what it knew about them.
        for url, file in previous.files.items():
            if url not in rendered and (client / file).is_file():
                manifest.files[url] = file
                if file in previous.content_types:
                    manifest.content_types[file] = previous.content_types[file]
                if file in previous.headers:
                    manifest.headers[file] = previous.headers[file]
                if url in previous.redirects:
                    manifest.redirects[url] = previous.redirects[url]
    for url, page in freezer.pages.items():
        manifest.files.setdefault(url, page.file)
    for url, page in rendered.items():
        if page.content_type is not None:
            manifest.content_types[page.file] = page.content_type
        if page.headers:
            manifest.headers[page.file] = list(page.headers)
        if page.redirect is not None:
            manifest.redirects[url] = Redirect(*page.redirect)
    for route in freezer.routes:
        entry = RuleEntry(route.rule.rule, route.endpoint, route.methods)
        if route.mode is Mode.PRERENDERED:
            manifest.prerendered.append(entry)
        elif route.mode is Mode.ON_DEMAND:
            manifest.on_demand.append(entry)
    return manifest


def _read_previous(previous: Path | None) -> Manifest | None:
    if previous is None:
        return None
    try:
        return Manifest.read(previous / MANIFEST_NAME)
    except ManifestError:
        return None


@contextmanager
def _new_build(out: Path) -> Iterator[tuple[Path, Path | None]]:
    """Give a fresh folder for a build, and the live build's folder; swap it in on success.

    On failure, delete everything this build made, ``out`` itself included if it is new.
    """
    builds = out / BUILDS
    if out.exists() and not builds.is_dir() and any(out.iterdir()):
        raise BuildError(
            f"{out} exists and is not a flask_ondemand build folder."
            " Choose another --out, or remove it."
        )
    made = out if not out.exists() else builds if not builds.exists() else None
    builds.mkdir(parents=True, exist_ok=True)
    lock = os.open(builds / ".lock", os.O_CREAT | os.O_RDWR, 0o644)
    try:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise BuildError(
                f"another build into {out} is running; try again when it ends"
            ) from None
        for stale in builds.glob("*.tmp"):  # left by a build that was killed
            shutil.rmtree(stale, ignore_errors=True)
        build_id = time.strftime("%Y%m%d-%H%M%S-") + secrets.token_hex(3)
        staging = builds / f"{build_id}.tmp"
        staging.mkdir()
        previous = live_build(out)
        try:
            yield staging, previous
            final = builds / build_id
            staging.rename(final)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            if made is not None:
                shutil.rmtree(made, ignore_errors=True)
            raise
        _swap_in(out, final)
        for old in builds.iterdir():
            if old.is_dir() and old not in (final, previous):
                shutil.rmtree(old, ignore_errors=True)
    finally:
        os.close(lock)


def live_build(out: Path) -> Path | None:
    """Return the folder of the build ``out`` serves now, or None if it has none."""
    current = out / CURRENT
    return current.resolve() if current.is_dir() else None


def _swap_in(out: Path, final: Path) -> None:
    """Point ``out/current`` at ``final`` with one rename, and make the stable entries."""
    _write_if_changed(out / "server.py", SERVER_PY)
    for name in ("client", MANIFEST_NAME):
        if not (out / name).is_symlink():
            (out / name).symlink_to(f"{CURRENT}/{name}")
    link = out / f".{CURRENT}.{final.name}"
    link.symlink_to(f"{BUILDS}/{final.name}")
    os.replace(link, out / CURRENT)


def _write_if_changed(path: Path, text: str) -> None:
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)


def _link_or_copy(source: str, destination: str) -> None:
    """Seed a build with the previous build's files: hard links cost no space and keep mtimes."""
    try:
        os.link(source, destination)
    except OSError:
        shutil.copy2(source, destination)
