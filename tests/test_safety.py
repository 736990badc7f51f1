"""Prerender safety: what a prerendered page reads or writes of its request, at build time."""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import (
    Flask,
    Response,
    g,
    redirect,
    render_template,
    render_template_string,
    request,
    session,
    url_for,
)
from flask_login import LoginManager, UserMixin, login_required, login_user, logout_user

from flask_ondemand import ConfigError, Freezer, PageError, RequestDataWarning, cookies, prerender
from flask_ondemand.safety import RECORDER_KEY, Recorder, record_requests

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
        # Flask-Babel's locale selector reads this, straight from the environ.
        (lambda: request.accept_languages.best, "request.headers['Accept-Language']"),
        (lambda: request.accept_mimetypes.best, "request.headers['Accept']"),
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
    # Read in this file's code: its line is named (a template's would be, rather).
    read = message.removeprefix(prefix).split(": the file holds")[0]
    located = rf"{re.escape(recorded)} \(tests/test_safety\.py, line \d+\)"
    assert re.search(rf"(^|, ){located}(, |$)", read), read


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
        r" \(tests/test_safety.py, line \d+\) \(ONDEMAND_STRICT\)\. Move what depends on the"
        r" visitor into an island \(\{\{ defer\(\.\.\.\) \}\} and @island\), render its URLs"
        r" with a query on demand \(prerender\(live_query=True\)\), or mark the route"
        r" @prerender\(False\)\.$",
    ):
        build(app, tmp_path)


@pytest.mark.parametrize(
    ("view", "what"),
    [
        (lambda: cookies.set("seen", "1") or "x", "cookies.set('seen') ({}), Set-Cookie: seen"),
        (lambda: cookies.delete("seen") or "x", "cookies.delete('seen') ({}), Set-Cookie: seen"),
        # The session's keys a page wrote are named.
        (lambda: session.update(seen=True) or "x", "session['seen'] ({}), Set-Cookie: session"),
    ],
)
def test_a_page_that_sets_a_cookie_fails(
    app: Flask, tmp_path: Path, view: Callable[[], str], what: str
) -> None:
    """Each write is named with where the app made it."""
    app.add_url_rule("/welcome/", "welcome", view)
    with pytest.raises(PageError, match="must never set someone's cookie") as raised:
        build(app, tmp_path)
    where = f"tests/test_safety.py, line {view.__code__.co_firstlineno}"
    assert str(raised.value).startswith(
        f"/welcome/: sets a cookie ({what.format(where)}) while answering 200 OK."
    )


def test_a_form_made_in_a_prerendered_view_names_its_line_and_islands(
    app: Flask, tmp_path: Path
) -> None:
    """Flask-WTF puts a form's CSRF token in the session when the token is rendered (as
    microblog's profile page does with its EmptyForm): the message names that line, and says a
    form can be an island."""
    from flask_wtf import FlaskForm

    @app.route("/user/ada/")
    def profile() -> str:
        form = FlaskForm()
        return f"Ada {form.hidden_tag()}"

    line = profile.__code__.co_firstlineno + 2  # where the token is rendered
    with pytest.raises(PageError) as raised:
        build(app, tmp_path)
    assert str(raised.value) == (
        f"/user/ada/: sets a cookie (session['csrf_token'] (tests/test_safety.py, line {line}),"
        " Set-Cookie: session) while answering 200 OK. A prerendered page is built once and"
        " served to everyone, so it must never set someone's cookie. Render the form in an"
        " island (@island, defer()), or mark the route @prerender(False)."
    )


# Through the flask CLI: the messages a user sees, and the build left intact.


@pytest.mark.parametrize(
    ("breakage", "source", "message"),
    [
        (
            "setcookie",
            'cookies.set("seen", "1")',
            "Error: build failed: /welcome/: sets a cookie (cookies.set('seen')"
            " (testsite.py, line {}), Set-Cookie: seen) while answering 200 OK.",
        ),
        (
            "session",
            'session["seen"] = True',
            "Error: build failed: /welcome/: sets a cookie (session['seen'] (testsite.py,"
            " line {}), Set-Cookie: session) while answering 200 OK.",
        ),
    ],
)
def test_cli_refuses_a_prerendered_cookie_and_keeps_the_build(
    project: Path, breakage: str, source: str, message: str
) -> None:
    """The message names the line that set it, in the user's own module."""
    flask(project, "ondemand", "build")
    before = snapshot(project / "dist")
    result = flask(project, "ondemand", "build", env={"SITE_BREAK": breakage}, check=False)
    assert result.returncode == 1
    lines = (project / "testsite.py").read_text().splitlines()
    line = next(number for number, text in enumerate(lines, 1) if source in text)
    assert message.format(line) in result.stderr
    assert snapshot(project / "dist") == before


def test_cli_warns_about_request_reads(project: Path) -> None:
    result = flask(project, "ondemand", "build", env={"SITE_BREAK": "readcookie"})
    assert re.search(
        r"^Warning: /greeting/ \(endpoint greeting\) is prerendered but read cookies.get\('name'\)"
        r" \(testsite.py, line \d+\), request.headers\['User-Agent'\] \(testsite.py, line \d+\):",
        result.stderr,
        re.M,
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


# What cannot change the page is not recorded: every warning can be acted on.


def test_reads_by_after_request_hooks_are_not_recorded(
    app: Flask, tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    """Flask-Login reads the session in an after_request hook on every request."""

    @app.after_request
    def look(response: Response) -> Response:
        response.headers["X-Seen"] = str("_remember" in session) + str(request.cookies)
        return response

    app.add_url_rule("/", "index", lambda: "the page")
    build(app, tmp_path)
    assert not [w for w in recwarn if issubclass(w.category, RequestDataWarning)]


def test_static_files_are_not_recorded_and_pages_are(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    static = tmp_path / "static"
    static.mkdir()
    (static / "favicon.ico").write_bytes(b"\0\0\1\0")  # Flask and servers name its type apart
    app = make_app(ondemand=True)
    app.static_folder = str(static)

    @app.before_request
    def theme() -> None:
        g.theme = request.cookies.get("theme")  # on every request, static files included

    app.add_url_rule("/", "index", lambda: "the page")
    with pytest.warns(RequestDataWarning) as warned:
        build(app, tmp_path / "out")
    assert [str(w.message).split(" is prerendered")[0] for w in warned] == ["/ (endpoint index)"]
    assert (tmp_path / "out/static/favicon.ico").is_file()


def test_a_read_in_a_template_names_the_template_and_line(
    make_app: Callable[..., Flask], tmp_path: Path
) -> None:
    templates = tmp_path / "templates"
    templates.mkdir()
    (templates / "page.html").write_text("<h1>Hi</h1>\n{{ session.get('name') }}\n")
    app = make_app()
    app.template_folder = str(templates)
    app.add_url_rule("/", "index", lambda: render_template("page.html"))
    with pytest.warns(RequestDataWarning) as warned:
        build(app, tmp_path / "out")
    location = f"{templates / 'page.html'}, line 2"  # outside the current folder: as it is
    assert f"read session ({location}): the file holds" in str(warned[0].message)
    assert "Move what depends on the visitor into an island" in str(warned[0].message)


def test_an_absolute_url_of_the_build_host_is_warned_about_once(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/", "index", lambda: url_for("index", _external=True))
    app.add_url_rule("/feed/", "feed", lambda: request.url_root)
    with pytest.warns(RequestDataWarning) as warned:
        build(app, tmp_path)
    assert [str(w.message) for w in warned] == [
        "/ (endpoint index) holds the absolute URL http://localhost/, made from the build's own"
        " address: set ONDEMAND_SITE_URL to your site's (as 'https://example.com')."
    ]


def test_the_site_url_makes_absolute_urls_and_https(
    make_app: Callable[..., Flask], tmp_path: Path, recwarn: pytest.WarningsRecorder
) -> None:
    app = make_app(ONDEMAND_SITE_URL="https://example.com")

    @app.route("/")
    def index() -> str:
        return f"{url_for('index', _external=True)} {request.is_secure}"

    build(app, tmp_path)
    assert (tmp_path / "index.html").read_text() == "https://example.com/ True"
    assert not recwarn.list


@pytest.mark.parametrize("url", ["example.com", "https://example.com/blog", "ftp://x", 42])
def test_a_site_url_that_is_not_a_scheme_and_host_is_refused(
    make_app: Callable[..., Flask], tmp_path: Path, url: object
) -> None:
    app = make_app(ONDEMAND_SITE_URL=url)
    app.add_url_rule("/", "index", lambda: "x")
    with pytest.raises(ConfigError, match="ONDEMAND_SITE_URL must be a scheme and a host"):
        build(app, tmp_path)


def test_live_query_pages_may_read_their_query(app: Flask, tmp_path: Path) -> None:
    @app.route("/")
    @prerender(live_query=True)
    def index() -> str:
        return f"page {request.args.get('page', 1)}"

    @app.route("/other/")
    def other() -> str:
        return f"page {request.args.get('page', 1)}"

    with pytest.warns(RequestDataWarning) as warned:
        build(app, tmp_path)
    assert [str(w.message).split(" is")[0] for w in warned] == ["/other/ (endpoint other)"]


@pytest.mark.parametrize(
    ("read", "keys"),
    [
        (lambda: request.args.get("page", 1, type=int), ("page",)),
        (
            lambda: request.args["a"] if "sort" in request.args else request.args.getlist("b"),
            ("b", "sort"),
        ),
        (lambda: request.values.get("page"), ("page",)),
        (lambda: render_template_string("{{ request.args.page }}"), ("page",)),
        (lambda: request.path, ()),
        # Read whole: any parameter may change the page.
        (lambda: dict(request.args), None),
        (lambda: list(request.args.items()), None),
        (lambda: request.args.to_dict(), None),
        (lambda: bool(request.args), None),
        (lambda: f"{request.args}", None),
        (lambda: url_for("index", **request.args), None),
        (lambda: request.url.endswith("/"), None),
        (lambda: request.full_path, None),
        (lambda: request.query_string, None),
    ],
)
def test_a_live_query_page_notes_the_parameters_it_looks_up(
    app: Flask, tmp_path: Path, read: Callable[[], object], keys: tuple[str, ...] | None
) -> None:
    """What a query without any of them changes nothing of: hosts that route a query by its
    parameters' names send only those to the app."""

    @app.route("/")
    @prerender(live_query=True)
    def index() -> str:
        return str(read())

    app.config["FREEZER_DESTINATION"] = str(tmp_path)
    freezer = Freezer(app)
    freezer.freeze()
    assert freezer.pages["/"].query_keys == keys


# Redirects the build's own request caused: as files, they would send everyone there.


def test_a_redirect_after_reading_the_request_fails(app: Flask, tmp_path: Path) -> None:
    @app.route("/members/")
    def members() -> Response:
        if "user" not in session:  # @login_required, by hand
            return redirect(url_for("login", next=request.path))
        return Response("members")

    app.add_url_rule("/login", "login", lambda: "login", methods=["GET", "POST"])
    with pytest.raises(PageError) as raised:
        build(app, tmp_path)
    assert re.fullmatch(
        r"/members/: redirects \(302 FOUND to /login\?next=/members/\) after reading session"
        r" \(tests/test_safety.py, line \d+\): as a file, that redirect would send every"
        r" visitor there, signed in or not\. Mark the route @prerender\(False\) \(or list the"
        r" session's cookie in ONDEMAND_LIVE_COOKIES\)\.",
        str(raised.value),
    )


def test_login_required_names_the_view_it_guards(app: Flask, tmp_path: Path) -> None:
    """Flask-Login's own @login_required reads current_user, in a library: the message
    points at the view it guards, not at the command that runs the build."""
    manager = LoginManager(app)
    manager.login_view = "login"
    manager.login_message = None  # its flash would set the session's cookie
    manager.user_loader(lambda user_id: None)
    app.add_url_rule("/login", "login", lambda: "login", methods=["GET", "POST"])

    @app.route("/explore/")
    @login_required
    def explore() -> str:
        return "explore"

    line = explore.__wrapped__.__code__.co_firstlineno
    with pytest.raises(
        PageError, match=rf"reading current_user \(tests/test_safety.py, line {line}\)"
    ):
        build(app, tmp_path)


@pytest.mark.parametrize("action", ["logout", "login"])
def test_a_page_that_logs_its_visitor_in_or_out_fails(
    app: Flask, tmp_path: Path, action: str
) -> None:
    """A GET view that logs out (or in) would be a file that logs nobody out: it is refused
    whatever the session held, in the build, as a page that sets a cookie is."""
    LoginManager(app).user_loader(lambda user_id: None)

    class Member(UserMixin):  # type: ignore[misc]  # Flask-Login ships no types
        id = "ada"

    @app.route(f"/auth/{action}")
    def act() -> Response:
        if action == "logout":
            logout_user()
        else:
            login_user(Member())
        return redirect("/")

    app.add_url_rule("/", "index", lambda: "home")
    with pytest.raises(
        PageError, match=rf"^/auth/{action}: sets a cookie \(flask_login\.{action}_user\(\)"
    ):
        build(app, tmp_path)


def test_a_redirect_to_an_on_demand_page_about_this_one_fails(app: Flask, tmp_path: Path) -> None:
    """Flask-Login's @login_required reads nothing the build can see when the user is taken
    for anonymous before it asks; its redirect still names this page."""
    app.add_url_rule("/login", "login", lambda: "login", methods=["GET", "POST"])
    app.add_url_rule("/explore/", "explore", lambda: redirect("/login?next=%2Fexplore%2F"))
    with pytest.raises(PageError, match=r"^/explore/: redirects \(302 FOUND to /login\?next="):
        build(app, tmp_path)


def test_a_moved_page_is_still_a_redirect(app: Flask, tmp_path: Path) -> None:
    app.add_url_rule("/new/", "new", lambda: "new")
    app.add_url_rule("/old/", "old", lambda: redirect(url_for("new", ref="old"), 301))
    build(app, tmp_path)
    assert "Redirecting to /new/?ref=old" in (tmp_path / "old/index.html").read_text()


def test_a_route_marked_prerendered_only_warns(app: Flask, tmp_path: Path) -> None:
    @app.route("/members/")
    @prerender(True)  # its author's choice
    def members() -> Response:
        return redirect("/login") if "user" not in session else Response("members")

    with pytest.warns(RequestDataWarning, match=r"^/members/ \(endpoint members\) redirects"):
        build(app, tmp_path)


# Recording in a server (the route cache's renders): only requests that carry a Recorder.


def test_a_server_records_only_the_requests_that_carry_a_recorder(app: Flask) -> None:
    app.secret_key = "secret"
    seen: list[tuple[type, type]] = []  # the request's class, the session's
    responses: list[int] = []

    @app.route("/page/")
    def page() -> str:
        current = request._get_current_object()  # type: ignore[attr-defined]
        seen.append((type(current), type(session._get_current_object())))  # type: ignore[attr-defined]
        return f"{request.cookies.get('theme')} {session.get('user')} {request.args.get('q')}"

    @app.after_request
    def hook(response: Response) -> Response:
        request.cookies.get("late")  # after the page is made: not the page's read
        return response

    plain_request, plain_session = app.request_class, type(app.session_interface)
    record_requests(app, on_response=lambda response: responses.append(response.status_code))
    client = app.test_client()
    client.set_cookie("theme", "dark")

    # No recorder: the app's own request class and session, and no callback.
    assert client.get("/page/?q=1").text == "dark None 1"
    assert seen[-1][0] is plain_request
    assert type(app.session_interface) is plain_session
    assert seen[-1][1].__name__ == "SecureCookieSession"
    assert responses == []

    recorder = Recorder()
    reply = client.get("/page/?q=2", environ_base={RECORDER_KEY: recorder})
    assert reply.text == "dark None 2"
    assert seen[-1][0] is not plain_request
    assert issubclass(seen[-1][0], plain_request)
    assert seen[-1][1].__name__ == "RecordingSecureCookieSession"
    assert set(recorder.reads) == {"request.cookies", "session", "request.args"}
    assert not recorder.active
    assert responses == [200]
