"""``flask ondemand build``: freeze the prerendered pages, write the manifest, swap the build in.

The build folder's layout is in layout.py.

A build writes a new ``.builds/<id>.tmp`` folder and, once everything is in it, replaces the
``current`` link with one rename. Until then nothing the server or a reader of ``DIR`` sees has
changed, and a failed build deletes its folder and leaves ``DIR`` as it was. The build before
is kept, so responses already being sent from it can finish.

A partial build (``--only``) holds only what changed: its ``client/`` has the pages re-rendered
since the last whole build, and its ``base-client`` link names that build's ``client/``, where
every other file is. So it costs what it renders, not the size of the site (copying ten
thousand files as links would cost more than rendering one page). The server looks for a file
in ``client/`` and then in ``base-client``; the nginx adapter does the same; adapters that
need one folder of files get it from :func:`~flask_ondemand.layout.copy_client_files`. A base
is kept as long as a kept build lies on it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import select
import shutil
import time
import warnings
from collections import Counter
from collections.abc import Callable, Container, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import dataclass, field
from itertools import chain
from pathlib import Path

from flask import Flask
from werkzeug.exceptions import HTTPException

from .adapters import Deployment, Site, get_adapter
from .caching import cache_mark_of
from .errors import BuildError, ManifestError, NoViewFunctionWarning
from .extension import require_ondemand
from .freezer import FREEZER_KEY, Freezer
from .layout import (
    BASE_CLIENT,
    BUILDS,
    CACHE,
    CLIENT,
    CURRENT,
    base_of,
    copy_client_files,
    copy_linked,
    link_from_base,
    live_build,
    with_siblings,
)
from .manifest import (
    MANIFEST_NAME,
    Caching,
    Header,
    Manifest,
    OwnHeader,
    Redirect,
    RuleEntry,
    by_name,
    own_headers,
    site_headers_of,
)
from .marks import Mark
from .pagetable import PageRow
from .routes import Mode, takes_live_cookies

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
    #: What the adapter wrote, and how to deploy it.
    deployment: Deployment


@dataclass
class _NewBuild:
    #: The new build's folder, while it is being written.
    folder: Path
    #: The live build's folder, if there is one.
    previous: Path | None
    #: Entries of the build that ``DIR`` links to, as ``DIR/<name> -> current/<name>``.
    links: list[str] = field(default_factory=lambda: [CLIENT, MANIFEST_NAME])


def build(
    app: Flask,
    out_dir: str | os.PathLike[str],
    *,
    app_import: str | None,
    progress: Callable[[Iterator[str]], AbstractContextManager[Iterable[str]]] | None = None,
    adapter: str | None = None,
    jobs: int = 1,
    only: str | None = None,
) -> BuildResult:
    """Build ``app`` into ``out_dir`` atomically.

    :param app_import: how ``DIR/server.py`` imports the app, in ``flask --app`` syntax; None
        for Flask's ``wsgi.py``/``app.py`` discovery. ``ONDEMAND_APP_IMPORT`` overrides it.
    :param progress: wraps the iterator of URLs as they are written, such as
        ``click.progressbar``.
    :param adapter: the adapter that writes the host's layout; ``ONDEMAND_ADAPTER`` by default.
    :param jobs: how many processes render pages, forked from this one once the app is loaded.
    :param only: re-render only the previous build's pages that this picks (an endpoint name,
        or a path glob such as ``/blog/*``), and keep the others as they were.
    :raises BuildError: naming the route or URL and the cause; ``out_dir`` is then unchanged.

    Reads ``ONDEMAND_OUTPUT``, ``ONDEMAND_APP_IMPORT``, ``ONDEMAND_ADAPTER`` and its
    ``ONDEMAND_<ADAPTER>_*`` options, and the ``FREEZER_*`` keys.
    """
    require_ondemand(app)
    try:
        return _build(app, out_dir, app_import, progress, adapter, jobs, only)
    except OSError as error:
        if error.errno not in _WRITING_ERRORS:
            raise  # not about the folder: a generator's connection refused, say
        where = f" ({error.filename})" if error.filename else ""
        raise BuildError(
            f"cannot write the build into {Path(out_dir).absolute()}: {error.strerror}{where}."
            " Nothing was changed there."
        ) from error


def _build(
    app: Flask,
    out_dir: str | os.PathLike[str],
    app_import: str | None,
    progress: Callable[[Iterator[str]], AbstractContextManager[Iterable[str]]] | None,
    adapter: str | None,
    jobs: int,
    only: str | None,
) -> BuildResult:
    host = get_adapter(adapter or app.config.get("ONDEMAND_ADAPTER") or "wsgi")
    # The real path: old builds are told apart from the live one by path, and server.py finds
    # the project by a relative path from where gunicorn --chdir lands, which is the real one.
    out = Path(out_dir).resolve()
    freezer: Freezer = app.extensions.get(FREEZER_KEY) or Freezer(app)
    with _new_build(out) as new:
        client = new.folder / CLIENT
        previous = _read_previous(new.previous)
        with freezer.destination(client):
            if only is None:
                if new.previous is not None and previous is not None:
                    # Unchanged files are then kept as they are, with their mtime (and ETag).
                    copy_client_files(new.previous, previous.files.values(), client)
                urls = freezer.freeze_each(jobs=jobs)
            else:
                if previous is None:
                    raise BuildError(
                        f"--only needs a previous build in {out}: build it whole first"
                    )
                _check_not_a_slip(only, previous)
                selected = freezer.select(only, previous.files)
                if not selected:
                    raise BuildError(
                        f"--only {only!r} picks none of the previous build's pages (an on-demand"
                        " URL or endpoint is never built)"
                    )
                _check_same_routes(freezer, previous)
                _start_partial(new, [previous.files[u] for u in selected if u in previous.files])
                others = {url: file for url, file in previous.files.items() if url not in selected}
                # No more workers than pages: starting one costs more than a page or two.
                pages = freezer.freeze_urls(selected, others=others, jobs=min(jobs, len(selected)))
                urls = (page.url for page in pages)
            with (progress or nullcontext)(urls) as written:
                for _ in written:
                    pass
        if previous is not None and only is None:
            _remove_unproduced(client, freezer.produced)
        elif previous is not None:
            for url in freezer.skipped & previous.files.keys():  # gone now, with its siblings
                for name in with_siblings(previous.files[url]):
                    (client / name).unlink(missing_ok=True)
                _remove_empty_folders(client, previous.files[url])
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
            new.folder / MANIFEST_NAME,
            previous=previous,
            keep_previous=only is not None,
            app_import=app.config.get("ONDEMAND_APP_IMPORT") or app_import,
            project_root=os.path.relpath(Path.cwd().resolve(), out),
            # What the host's CDN reads a cached route's sharing from, if the adapter says.
            cdn_cache_headers=getattr(host, "cdn_cache_headers", ()),
        )
        site = Site(out, new.folder, manifest, app.config, Path.cwd().resolve(), app)
        deployment = host.write(site)
        new.links += deployment.entries
    return BuildResult(out, manifest, freezer.pages.count_rendered(), deployment)


# Errors that say the build folder cannot be written, as opposed to any other OSError.
_WRITING_ERRORS = frozenset(
    {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO}
)


def _start_partial(new: _NewBuild, picked: list[str]) -> None:
    """Start a partial build on the previous one: the files re-rendered since its base (the
    last whole build), and the base linked as ``base-client``.

    The picked pages' current files are linked in too, so that a page rendered to the same
    bytes keeps its file, and one that is gone now can be removed like any other.
    """
    assert new.previous is not None
    client = new.folder / CLIENT
    previous_base = base_of(new.previous)
    base = previous_base or new.previous / CLIENT  # a whole build is the base
    if not base.is_dir():
        raise BuildError(f"{base}, the whole build the live one lies on, is gone: build whole")
    if previous_base is None:
        client.mkdir()
    else:
        copy_linked(new.previous / CLIENT, client)
    link_from_base(base, picked, client)
    (new.folder / BASE_CLIENT).symlink_to(os.path.relpath(base, new.folder))


def _remove_unproduced(client: Path, produced: Container[str]) -> None:
    """Delete what this build did not produce from its client folder.

    The folder starts as a copy of the previous build, so that unchanged files keep their
    mtime; what this build did not write again must not outlive it. So
    ``FREEZER_REMOVE_EXTRA_FILES`` and ``FREEZER_DESTINATION_IGNORE`` have no say here: a
    build holds exactly its own pages.
    """
    for folder, _, files in os.walk(client, topdown=False):
        relative = os.path.relpath(folder, client).replace(os.sep, "/")
        prefix = "" if relative == "." else relative + "/"
        for name in files:
            if prefix + name not in produced:
                os.unlink(os.path.join(folder, name))
        if folder != str(client) and not os.listdir(folder):
            os.rmdir(folder)


def _remove_empty_folders(client: Path, file: str) -> None:
    """Remove the folders that a removed page's file leaves empty, up to ``client``: a whole
    build would not have them, and adapters copy folders as they are."""
    folder = (client / with_siblings(file)[0]).parent
    while client in folder.parents and folder.is_dir() and not any(folder.iterdir()):
        folder.rmdir()
        folder = folder.parent


def _manifest(
    freezer: Freezer,
    path: Path,
    *,
    previous: Manifest | None,
    keep_previous: bool,
    app_import: str | None,
    project_root: str,
    cdn_cache_headers: Iterable[Header],
) -> Manifest:
    """Write the new build's manifest at ``path``: what the freezer wrote, on top of the
    previous build's pages when ``keep_previous`` (a build with --only), with the routes as
    they are now; and return it as read back.

    The pages are read twice as they come, never held: once for the headers most of them
    share, once to write each with its own (a partial build reads only its own pages).
    """
    manifest = Manifest(
        app_import=app_import,
        project_root=project_root,
        cdn_cache_headers=list(cdn_cache_headers),
    )
    query_keys = _query_keys(freezer, previous, keep_previous)
    for route in freezer.routes:
        mark = route.mark or Mark(route.mode is Mode.PRERENDERED)
        live = takes_live_cookies(freezer.app, route)
        cache_mark = cache_mark_of(freezer.app.view_functions.get(route.endpoint))
        caching = None if cache_mark is None else Caching(cache_mark.max_age, cache_mark.swr)
        entry = RuleEntry(
            route.rule.rule,
            route.endpoint,
            route.methods,
            live_query=mark.live_query,
            fallback=mark.fallback,
            live_cookies=live,
            cache=caching,
            query_keys=query_keys.get(route.endpoint, ()) if mark.live_query else None,
        )
        if route.mode is Mode.PRERENDERED:
            manifest.prerendered.append(entry)
        elif route.mode is Mode.ON_DEMAND:
            manifest.on_demand.append(entry)

    table = previous.table() if keep_previous and previous is not None else None
    kept = previous if keep_previous else None
    without: Iterable[str] = ()
    if table is not None and previous is not None:
        # A partial build: the previous build's table, copied as it is, less the pages
        # rendered (or gone) now, which are added with their own headers beside the site's
        # as they were. Reading every page again would cost a whole build's worth of rows.
        manifest.site_headers = list(previous.site_headers)
        kept, without = None, chain(freezer.pages, freezer.skipped)
    else:
        # How many files are sent with each set of headers: the table counts those of the
        # pages rendered now; only the others are read one by one.
        files_with = Counter(dict(freezer.pages.header_sets()))
        others = _pages(freezer, kept, previous, rendered_now=False)
        files_with.update(tuple(_sent(page.headers)) for page in others)
        manifest.site_headers = site_headers_of(files_with)
    site = by_name(manifest.site_headers)
    # Pages share a few sets of headers: each set's own headers are found once (a bounded
    # memo, as a site may give every page a header of its own).
    own_of: dict[tuple[OwnHeader, ...], tuple[OwnHeader, ...]] = {}

    def with_own_headers(page: PageRow) -> PageRow:
        own = own_of.get(page.headers)
        if own is None:
            if len(own_of) >= _OWN_HEADERS_KEPT:
                own_of.clear()
            own = own_of[page.headers] = tuple(own_headers(_sent(page.headers), site))
        return page if own == page.headers else page._replace(headers=own)

    pages = map(with_own_headers, _pages(freezer, kept, previous))
    manifest.write(path, pages=pages, on=table, without=without)
    return Manifest.read(path)


# How many distinct sets of headers a build remembers the own headers of.
_OWN_HEADERS_KEPT = 1024


def _sent(headers: Iterable[OwnHeader]) -> list[Header]:
    """The headers a file is sent with, of a page's (its every header, as :func:`_pages`
    gives them)."""
    return [(name, value) for name, value in headers if value is not None]


def _pages(
    freezer: Freezer,
    kept_build: Manifest | None,
    previous: Manifest | None,
    *,
    rendered_now: bool = True,
) -> Iterator[PageRow]:
    """The new build's pages, each with every header its file is sent with: the pages of
    ``kept_build`` that the freezer did not render (or find gone) now, those whose files it
    kept, then (unless not ``rendered_now``) those it rendered."""
    cached_endpoints = _cached_endpoints(freezer.app)
    if kept_build is not None:
        for page in kept_build.page_rows():
            if page.url not in freezer.pages and page.url not in freezer.skipped:
                yield page._replace(headers=tuple(kept_build.every_header(page.headers)))
    for url, built in freezer.pages.items_where(kept=True):
        # A file FREEZER_SKIP_EXISTING kept: what the previous build knew about it.
        endpoint = _endpoint_of(freezer.app, url) if cached_endpoints else None
        if previous is None:
            yield PageRow(url, built.file, cached=endpoint in cached_endpoints)
            continue
        redirect = previous.redirects.get(url)
        yield PageRow(
            url,
            built.file,
            previous.content_types.get(built.file),
            tuple(previous.headers_for(built.file)),
            redirect,
            url in previous.live_query,
            redirect is None and endpoint in cached_endpoints,
        )
    if not rendered_now:
        return
    for row in freezer.pages.rendered_rows():
        redirect = None if row.redirect is None else Redirect(*row.redirect)
        cached = redirect is None and row.endpoint in cached_endpoints
        yield PageRow(
            row.url, row.file, row.content_type, row.headers, redirect, row.live_query, cached
        )


def _query_keys(
    freezer: Freezer, previous: Manifest | None, keep_previous: bool
) -> dict[str, tuple[str, ...] | None]:
    """Endpoint -> the query parameters the pages of its ``live_query`` route looked up while
    they were rendered (None: one read its query whole). A partial build, or one that kept a
    page's file, adds what the previous build knew of the pages it did not render: more
    names only send more queries to the app, which answers them right."""
    found: dict[str, set[str] | None] = {}

    def add(endpoint: str, keys: Iterable[str] | None) -> None:
        known = found.setdefault(endpoint, set())
        if keys is None or known is None:
            found[endpoint] = None
        else:
            known.update(keys)

    if previous is not None and (keep_previous or freezer.pages.any_kept()):
        for entry in previous.prerendered:
            if entry.live_query:
                add(entry.endpoint, entry.query_keys)
    for page in freezer.pages.live_query_pages():
        if page.endpoint is not None:
            add(page.endpoint, page.query_keys)
    return {
        endpoint: None if keys is None else tuple(sorted(keys)) for endpoint, keys in found.items()
    }


def _cached_endpoints(app: Flask) -> set[str | None]:
    """The endpoints of the routes marked ``cache``: the route cache refreshes their pages,
    from their file on (but redirects, whose file is a refresh page)."""
    return {
        rule.endpoint
        for rule in app.url_map.iter_rules()
        if cache_mark_of(app.view_functions.get(rule.endpoint)) is not None
    }


def _endpoint_of(app: Flask, url: str) -> str | None:
    try:
        endpoint, _ = app.url_map.bind("localhost").match(url, method="GET")
    except HTTPException:
        return None
    return str(endpoint)


def _check_not_a_slip(only: str, previous: Manifest) -> None:
    """Refuse a URL that is a page of the previous build with or without its final slash: a
    new page by that name would only clash with it."""
    if not only.startswith("/") or only in previous.files:
        return
    other = only[:-1] if only.endswith("/") else only + "/"
    if other in previous.files:
        raise BuildError(f"--only {only!r} is not a page of the previous build; {other!r} is")


def _check_same_routes(freezer: Freezer, previous: Manifest) -> None:
    """--only keeps the previous build's other pages: that is right only if the prerendered
    routes are still what they were."""
    now = {(r.rule.rule, r.endpoint) for r in freezer.routes if r.mode is Mode.PRERENDERED}
    before = previous.prerendered_routes()
    if now != before:
        changed = ", ".join(sorted(f"{rule} ({endpoint})" for rule, endpoint in now ^ before)[:3])
        raise BuildError(
            f"--only keeps the previous build's other pages, but the prerendered routes changed"
            f" since ({changed}): build whole"
        )


def _read_previous(previous: Path | None) -> Manifest | None:
    if previous is None:
        return None
    try:
        return Manifest.read(previous / MANIFEST_NAME)
    except ManifestError:
        return None


@contextmanager
def _new_build(out: Path) -> Iterator[_NewBuild]:
    """Give a fresh folder for a build, and the live build's folder; swap it in on success.

    On failure, delete everything this build made, ``out`` itself included if it is new.
    """
    builds = out / BUILDS
    # The route cache's folder may come first: a purge before the first build makes it.
    if out.exists() and not builds.is_dir() and any(e.name != CACHE for e in out.iterdir()):
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
        final = builds / build_id

        def undo() -> None:
            """Delete what this build made, unless it was swapped in."""
            shutil.rmtree(staging, ignore_errors=True)
            if live_build(out) != final:
                shutil.rmtree(final, ignore_errors=True)
                _link_for(out, final).unlink(missing_ok=True)
                if made is not None and live_build(out) is None:
                    shutil.rmtree(made, ignore_errors=True)

        with _undone_if_killed(undo):
            try:
                staging.mkdir()  # once the watcher runs: it then removes it if this dies
                new = _NewBuild(staging, live_build(out))
                yield new
                staging.rename(final)
                _swap_in(out, final, new.links)
            except BaseException:
                undo()
                raise
        keep = {final, new.previous}
        keep |= {base.parent for kept in (final, new.previous) if (base := base_of(kept))}
        for old in builds.iterdir():
            if old.is_dir() and old not in keep:
                shutil.rmtree(old, ignore_errors=True)
        for entry in out.iterdir():  # links to what an earlier adapter wrote, now gone
            if entry.is_symlink() and not entry.exists():
                entry.unlink()
    finally:
        os.close(lock)


@contextmanager
def _undone_if_killed(undo: Callable[[], None]) -> Iterator[None]:
    """Run ``undo`` even if this process is killed in the block, by SIGKILL say, which leaves
    it no chance to clean up: a small watcher process, forked here, runs it then.

    The watcher waits on a pipe. When the block ends, this process says so and the watcher
    exits; if this process dies first (the watcher is then handed to another parent), the
    watcher undoes the build. It holds the build's lock until it is done, so no other build
    starts on a half-undone one. The build's workers die with this process (see render.py), so
    none writes into the folder after it is undone.
    """
    builder = os.getpid()
    read, write = os.pipe()
    watcher = os.fork()
    if watcher == 0:  # pragma: no cover - the watcher's own process; tests kill builds to see it
        try:
            os.close(write)
            os.setsid()  # outside the build's process group: a signal to the group spares it
            devnull = os.open(os.devnull, os.O_RDWR)
            for stream in (0, 1, 2):
                os.dup2(devnull, stream)
            while os.getppid() == builder:
                ready, _, _ = select.select([read], [], [], 0.2)
                if ready:
                    if os.read(read, 1):
                        os._exit(0)  # the build said it is done
                    break  # closed unsaid: every writer is gone
            # The builder died without saying it was done; wait for its workers to die too.
            time.sleep(0.2)
            undo()
        finally:
            os._exit(0)
    os.close(read)
    try:
        yield
    finally:
        os.write(write, b"done")
        os.close(write)
        os.waitpid(watcher, 0)


def _swap_in(out: Path, final: Path, links: list[str]) -> None:
    """Point ``out/current`` at ``final`` with one rename, and make the stable entries."""
    for name in links:
        if (out / name).exists() and not (out / name).is_symlink():
            raise BuildError(
                f"{out / name} is in the way of the build's link {name} -> {CURRENT}/{name}"
            )
    _replace_text(out / "server.py", SERVER_PY)
    for name in links:
        if not (out / name).is_symlink():
            (out / name).symlink_to(f"{CURRENT}/{name}")
    link = _link_for(out, final)
    link.symlink_to(f"{BUILDS}/{final.name}")
    os.replace(link, out / CURRENT)


def _link_for(out: Path, final: Path) -> Path:
    """The new ``current`` link, made beside the old one and renamed over it."""
    return out / f".{CURRENT}.{final.name}"


def _replace_text(path: Path, text: str) -> None:
    """Write a small text file atomically, unless it already holds ``text``."""
    if path.is_file() and path.read_text(encoding="utf-8") == text:
        return
    temporary = path.with_name(f".{path.name}.new")
    temporary.write_text(text, encoding="utf-8")
    os.replace(temporary, path)
