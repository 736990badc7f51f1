"""Prerender safety: what a prerendered page reads or writes of its request, at build time."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask, request, session

from flask_ondemand import Freezer, PageError, RequestDataWarning, cookies

from .servers import flask, snapshot


def build(app: Flask, destination: Path) -> None:
    app.config["FREEZER_DESTINATION"] = str(destination)
    Freezer(app).freeze()


@pytest.mark.parametrize(
    ("read", "recorded"),
    [
        (lambda: request.cookies.get("theme"), "request.cookies"),
        (lambda: cookies.get("theme"), "cookies.get('theme')"),
        (lambda: cookies.has("theme"), "cookies.has('theme')"),
        (lambda: request.args.get("page"), "request.args"),
        (lambda: request.values.get("page"), "request.values"),
        (lambda: request.headers.get("Accept-Language"), "request.headers['Accept-Language']"),
        (lambda: request.user_agent.string, "request.headers['User-Agent']"),
        (lambda: dict(request.headers), "request.headers"),
        (lambda: request.remote_addr, "request.remote_addr"),
        (lambda: session.get("user"), "session"),
        (lambda: "user" in session, "session"),
    ],
)
def test_each_request_read_is_recorded(
    app: Flask, tmp_path: Path, read: Callable[[], object], recorded: str
) -> None:
    app.add_url_rule("/page/", "page", lambda: str(read()))
    with pytest.warns(RequestDataWarning) as warned:
        build(app, tmp_path)
    assert len(warned) == 1
    message = str(warned[0].message)
    prefix = "/page/ (endpoint page) is prerendered but read "
    assert message.startswith(prefix)
    assert recorded in message.removeprefix(prefix).split(": the file holds")[0].split(", ")


def test_ordinary_reads_are_not_recorded(
    app: Flask, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    @app.route("/")
    def index() -> str:
        forwarded = request.headers.get("X-Forwarded-Proto")  # Flask-Talisman's force_https
        return f"{request.headers.get('Host')} {request.path} {request.method} {forwarded}"

    build(app, tmp_path)
    assert not [w for w in recwarn if issubclass(w.category, RequestDataWarning)]


def test_one_warning_per_route(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/posts/<slug>/", "post", lambda slug: f"{slug} {request.args}")
    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    freezer = Freezer(app)
    freezer.register_generator(lambda: (("post", {"slug": slug}) for slug in "abc"))
    with pytest.warns(RequestDataWarning) as warned:
        assert freezer.freeze() == {"/posts/a/", "/posts/b/", "/posts/c/"}
    assert len(warned) == 1
    assert str(warned[0].message).startswith(
        "/posts/a/ (rule /posts/<slug>/, endpoint post) is prerendered"
    )


def test_strict_mode_fails_the_build(make_app: Callable[..., Flask], tmp_path: Path) -> None:
    app = make_app(ONDEMAND_STRICT=True)
    app.add_url_rule("/page/", "page", lambda: str(request.args))
    with pytest.raises(
        PageError,
        match=r"^/page/: read request-specific data while prerendering: request.args"
        r" \(ONDEMAND_STRICT\)",
    ):
        build(app, tmp_path)


@pytest.mark.parametrize(
    ("view", "what"),
    [
        (lambda: cookies.set("seen", "1") or "x", "cookies.set('seen'), Set-Cookie: seen"),
        (lambda: cookies.delete("seen") or "x", "cookies.delete('seen'), Set-Cookie: seen"),
        (lambda: session.update(seen=True) or "x", "Set-Cookie: session"),
    ],
)
def test_a_page_that_sets_a_cookie_fails(
    app: Flask, tmp_path: Path, view: Callable[[], str], what: str
) -> None:
    app.add_url_rule("/welcome/", "welcome", view)
    with pytest.raises(PageError, match="must never set someone's cookie") as raised:
        build(app, tmp_path)
    assert str(raised.value).startswith(f"/welcome/: sets a cookie ({what}).")


# Through the flask CLI: the messages a user sees, and the build left intact.


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            "setcookie",
            "Error: build failed: /welcome/: sets a cookie"
            " (cookies.set('seen'), Set-Cookie: seen).",
        ),
        ("session", "Error: build failed: /welcome/: sets a cookie (Set-Cookie: session)."),
    ],
)
def test_cli_refuses_a_prerendered_cookie_and_keeps_the_build(
    project: Path, breakage: str, message: str
) -> None:
    flask(project, "ondemand", "build")
    before = snapshot(project / "dist")
    result = flask(project, "ondemand", "build", env={"SITE_BREAK": breakage}, check=False)
    assert result.returncode == 1
    assert message in result.stderr
    assert snapshot(project / "dist") == before


def test_cli_warns_about_request_reads(project: Path) -> None:
    result = flask(project, "ondemand", "build", env={"SITE_BREAK": "readcookie"})
    assert (
        "Warning: /greeting/ (endpoint greeting) is prerendered but read"
        " cookies.get('name'), request.headers['User-Agent']:" in result.stderr
    )
    strict = flask(
        project,
        "ondemand",
        "build",
        env={"SITE_BREAK": "readcookie", "FLASK_ONDEMAND_STRICT": "true"},
        check=False,
    )
    assert strict.returncode == 1
    assert (
        "Error: build failed: /greeting/: read request-specific data while prerendering"
        in strict.stderr
    )
