"""ONDEMAND_LIVE_COOKIES and ``prerender(live_query=True)`` through the hosts:
tests/apps/microblog built with a host's adapter, and what every host must answer for it (as
tests/test_server.py asks of gunicorn and nginx).

Which answer is the file and which the live page is told by what each says: the live page has
the signed-in user's menu and ``Cache-Control: private``; the file has the anonymous menu
("Login"), is never private, and varies on Cookie. Which answer is the file and which the
app's page of a query is told by its page number, and by where the host says it came from.
"""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path

from flask import Flask

from flask_ondemand.adapters import Site
from flask_ondemand.manifest import Manifest, RuleEntry

from .servers import APPS, Reply, fetch, flask

MICROBLOG = "app:create_app()"


def build_microblog(
    folder: Path, adapter: str, *, env: dict[str, str] | None = None, check: bool = True
) -> tuple[Path, subprocess.CompletedProcess[str]]:
    """Copy the microblog into ``folder``/project and build it with ``adapter``; return the
    build folder and the command's result. A user who registers after the build is added."""
    project = folder / "project"
    shutil.copytree(APPS / "microblog", project, ignore=shutil.ignore_patterns("__pycache__"))
    build = ("ondemand", "build", "--adapter", adapter)
    result = flask(project, *build, app=MICROBLOG, env=env, check=check)
    (project / "users.txt").write_text("ada\ngrace\nnewbie\n")
    return project / "dist", result


def signed_in(url: str, name: str, *, remember: bool = False) -> dict[str, str]:
    """Sign ``name`` in through the host; the Cookie header their browser would then send."""
    fields = {"name": name, **({"remember": "1"} if remember else {})}
    login = fetch(
        url,
        "/auth/login",
        method="POST",
        body="&".join(f"{key}={value}" for key, value in fields.items()),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    )
    assert login.status == 303, (login.status, login.text)
    cookies = [header.split(";")[0] for header in login.headers.get_all("Set-Cookie") or []]
    return {"Cookie": "; ".join(cookies)}


def vary(page: Reply) -> set[str]:
    return {
        name.strip().lower()
        for line in page.headers.get_all("Vary") or []
        for name in line.split(",")
    }


def is_the_file(page: Reply, text: str, *, files_vary: bool = True) -> bool:
    """The anonymous file: its text, the anonymous menu, shareable, varying on Cookie (unless
    the host's tool drops the page's headers: ``files_vary``)."""
    return (
        page.status == 200
        and text in page.text
        and "Login" in page.text
        and "private" not in (page.headers["Cache-Control"] or "")
        and ("cookie" in vary(page) or not files_vary)
    )


def is_live_for(page: Reply, name: str, text: str) -> bool:
    """The page rendered for ``name``: their menu, private, varying on Cookie."""
    return (
        page.status == 200
        and text in page.text
        and f"Profile of {name}" in page.text
        and (page.headers["Cache-Control"] or "").split(",")[0].strip() == "private"
        and "cookie" in vary(page)
    )


def assert_live_cookies(url: str, *, files_vary: bool = True) -> None:
    """Anonymous visitors get the files; a signed-in one their own pages, by either cookie;
    an opted-out route's file for everyone; an unlisted cookie gets the file."""
    for path, text in [("/", "Page 1"), ("/user/ada/", "User ada")]:
        assert is_the_file(fetch(url, path), text, files_vary=files_vary), path
    ada = signed_in(url, "ada")
    assert is_live_for(fetch(url, "/", headers=ada), "ada", "Page 1")
    profile = fetch(url, "/user/ada/", headers=ada)
    assert is_live_for(profile, "ada", "User ada")
    assert "Edit your profile" in profile.text
    assert is_live_for(fetch(url, "/user/grace/", headers=ada), "ada", "User grace")
    about = fetch(url, "/about/", headers=ada)  # prerender(live_cookies=False)
    assert "About" in about.text
    assert "private" not in (about.headers["Cache-Control"] or "")
    staff = fetch(url, "/user/staff/", headers=ada)  # its own route, whose rule is not live
    assert (staff.status, staff.text) == (200, "Our staff")
    assert "private" not in (staff.headers["Cache-Control"] or "")
    remembered = signed_in(url, "grace", remember=True)["Cookie"].split("; ")
    token = next(cookie for cookie in remembered if cookie.startswith("remember_token="))
    assert is_live_for(fetch(url, "/", headers={"Cookie": token}), "grace", "Page 1")
    unlisted = fetch(url, "/", headers={"Cookie": "theme=dark; sessionx=1"})
    assert is_the_file(unlisted, "Page 1", files_vary=files_vary)
    newbie = fetch(url, "/user/newbie/", headers=ada)  # not built: fallback="live"
    assert (newbie.status, "User newbie" in newbie.text) == (200, True)


def assert_live_query(
    url: str,
    *,
    from_files: Callable[[Reply], bool],
    by_name: bool,
    files_vary: bool = True,
) -> None:
    """The microblog's "/" (prerender(live_query=True), reading ``page``): the bare URL is
    the host's file, and with a query string (a HEAD too, and a signed-in visitor's) the
    app's page of it. ``from_files`` tells, from the host's answer, that it sent a file of
    its own.

    A host that tells queries apart by their parameters' names (``by_name``: Vercel,
    Netlify) sends the app only a query with one the page looked up while it was built, and
    gives the file for any other (which the app would render alike); the others send the
    app every query, as the wsgi build does.
    """
    bare = fetch(url, "/")
    assert is_the_file(bare, "Page 1", files_vary=files_vary), bare.text
    assert from_files(bare)
    assert "Post number 1" in bare.text
    for path in ("/?page=2", "/?utm_source=feed&page=2", "/?page=2&utm_source=feed"):
        second = fetch(url, path)
        assert (second.status, "<h1>Page 2</h1>" in second.text) == (200, True), path
        assert "Post number 3" in second.text, path
        assert "Post number 1" not in second.text, path
        assert not from_files(second), path
    head = fetch(url, "/?page=3", method="HEAD")
    assert (head.status, from_files(head)) == (200, False)
    ada = signed_in(url, "ada")
    assert is_live_for(fetch(url, "/?page=2", headers=ada), "ada", "Page 2")
    other = fetch(url, "/?utm_source=feed")  # a parameter the page never reads
    assert (other.status, "<h1>Page 1</h1>" in other.text) == (200, True)
    assert from_files(other) is by_name


def unmatched_queries_site(folder: Path) -> Site:
    """A build as an adapter sees it, of two ``live_query`` routes whose queries a host that
    tells them apart by their parameters' names cannot: "/" read its query whole, "/tags/"
    looks up ``filter[tag]``, a name clients send percent-encoded; and "/plain/", which
    looks up ``page``."""
    app = Flask("unmatched")
    for rule, endpoint in [("/", "index"), ("/tags/", "tags"), ("/plain/", "plain")]:
        app.add_url_rule(rule, endpoint, lambda: "")
    manifest = Manifest(
        app_import=None,
        project_root="..",
        files={"/": "index.html", "/tags/": "tags/index.html", "/plain/": "plain/index.html"},
        live_query={"/", "/tags/", "/plain/"},
        prerendered=[
            RuleEntry("/", "index", ["GET"], live_query=True, query_keys=None),
            RuleEntry("/tags/", "tags", ["GET"], live_query=True, query_keys=("filter[tag]",)),
            RuleEntry("/plain/", "plain", ["GET"], live_query=True, query_keys=("page",)),
        ],
    )
    return Site(folder, folder, manifest, app.config, folder, app)
