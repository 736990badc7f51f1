"""A site with cached routes, for the route cache's tests: one route per case of the cache's
rules. Tests copy it into a project folder and build it through the real ``flask`` CLI.

Environment variables:
- SITE_CALL_LOG: a file every view appends its request's path and query to, one line per
  render, to count renders.
- CACHE_SITE_DATA: a file whose text the pages show: a test changes it to tell renders apart.
- CACHE_SITE_FAIL: a file; while it exists, every page raises.

``/held/?until=FILE`` (cached) and ``/hold/?until=FILE`` (not) wait, up to 30 s, until FILE
exists: requests pile up behind the first, or a worker is kept busy.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from flask import Flask, Response, request, session
from flask_login import LoginManager, UserMixin, current_user

from flask_ondemand import OnDemand, cache, cookies, prerender, response, revalidate, stream


class User(UserMixin):  # type: ignore[misc]  # Flask-Login ships no types
    def __init__(self, user_id: str) -> None:
        self.id = user_id


def data() -> str:
    path = os.environ.get("CACHE_SITE_DATA")
    return Path(path).read_text() if path and Path(path).exists() else "v1"


def wait_for(path: str) -> None:
    deadline = time.monotonic() + 30
    while not os.path.exists(path) and time.monotonic() < deadline:
        time.sleep(0.01)


def create_app() -> Flask:
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "test-secret"
    app.config.from_prefixed_env()  # FLASK_ONDEMAND_CACHE_URL=... and the like
    OnDemand(app)
    login = LoginManager(app)
    login.user_loader(User)

    @app.before_request
    def log_call() -> None:
        log = os.environ.get("SITE_CALL_LOG")
        if log and request.endpoint and request.endpoint != "static":
            with open(log, "a") as file:
                file.write(f"{request.full_path.rstrip('?')}\n")
        if os.path.exists(os.environ.get("CACHE_SITE_FAIL", "/nonexistent")):
            raise RuntimeError("the data source is down")

    @app.route("/prices/")
    @prerender(False)
    @cache(max_age=60, swr=600, tags=["prices"])
    def prices() -> str:
        return f"Prices {data()}"

    @app.route("/stock/<item>/")
    @prerender(False)
    @cache(max_age=60, tags=["stock"])
    def stock(item: str) -> str:
        return f"Stock of {item} {data()}"

    @app.route("/held/")
    @prerender(False)
    @cache(max_age=60, swr=600)
    def held() -> str:
        wait_for(request.args["until"])
        return f"Held {data()}"

    @app.route("/hold/")
    @prerender(False)
    def hold() -> str:
        wait_for(request.args["until"])
        return f"Held worker {os.getpid()}"

    @app.route("/about/")
    @cache(max_age=60, swr=600)
    def about() -> str:
        # Prerendered: its built file is its first answer, then it is refreshed.
        return f"About {data()}"

    @app.route("/about/<member>/")  # under /about/: CloudFront's quota of behaviours is near
    @prerender(paths=lambda: [{"member": "ada"}], fallback="live")
    @cache(max_age=60)
    def member(member: str) -> str:
        # Built for "ada"; any other is rendered on demand, then cached.
        return f"Member {member} {data()}"

    @app.route("/status/<int:code>/")
    @prerender(False)
    @cache(max_age=60)
    def status(code: int) -> Response:
        if code in (301, 302, 308):
            return Response("moved", code, {"Location": "/prices/"})
        return Response(f"status {code} {data()}", code)

    @app.route("/greeting/")
    @prerender(False)
    @cache(max_age=60)
    def greeting() -> str:
        # The first visitor's name must never reach the next visitor.
        return f"Hello {session.get('name', 'stranger')} {data()}"

    @app.route("/sign-in/<name>")
    @prerender(False)
    def sign_in(name: str) -> str:
        session["name"] = name
        return "signed in"

    @app.route("/welcome/")
    @prerender(False)
    @cache(max_age=60)
    def welcome() -> str:
        cookies.set("seen", "1")
        return f"Welcome {data()}"

    @app.route("/raw-cookie/")
    @prerender(False)
    @cache(max_age=60)
    def raw_cookie() -> Response:
        # Set on the Response itself: only the answer's headers show it.
        page = Response(f"Raw cookie {data()}")
        page.set_cookie("raw", "1")
        return page

    @app.route("/remember/")
    @prerender(False)
    @cache(max_age=60)
    def remember() -> str:
        session["remembered"] = True  # written, never read: the session's cookie is sent
        return f"Remember {data()}"

    @app.route("/theme/")
    @prerender(False)
    @cache(max_age=60)
    def theme() -> str:
        return f"Theme {request.cookies.get('theme', 'light')} {data()}"

    @app.route("/api/me")
    @prerender(False)
    @cache(max_age=60)
    def me() -> dict[str, str]:
        return {"token": request.headers.get("Authorization", "none"), "data": data()}

    @app.route("/whoami/")
    @prerender(False)
    @cache(max_age=60)
    def whoami() -> str:
        name = current_user.get_id() if current_user.is_authenticated else "anonymous"
        return f"User {name} {data()}"

    @app.route("/log-in/<user_id>")
    @prerender(False)
    def log_in(user_id: str) -> str:
        from flask_login import login_user

        login_user(User(user_id))
        return "logged in"

    @app.route("/own-private/")
    @prerender(False)
    @cache(max_age=60)
    def own_private() -> str:
        response.headers["Cache-Control"] = "private, max-age=60"
        return f"Own private {data()}"

    @app.route("/own-no-store/")
    @prerender(False)
    @cache(max_age=60)
    def own_no_store() -> str:
        response.headers["Cache-Control"] = "no-store"
        return f"Own no-store {data()}"

    @app.route("/languages/")
    @prerender(False)
    @cache(max_age=60)
    def languages() -> Response:
        return Response(f"Languages {data()}", headers={"Vary": "Accept-Language"})

    @app.route("/compressed/")
    @prerender(False)
    @cache(max_age=60)
    def compressed() -> Response:
        return Response(f"Compressed {data()}", headers={"Vary": "Accept-Encoding"})

    @app.route("/streamed/")
    @prerender(False)
    @cache(max_age=60)
    def streamed() -> Response:
        return stream(["Streamed ", data()])

    @app.route("/form/", methods=["GET", "POST"])
    @prerender(False)
    @cache(max_age=60)
    def form() -> str:
        return f"Form {request.method} {data()}"

    @app.route("/plain-cookie/")
    @prerender(False)
    def plain_cookie() -> str:
        # Not cached: still never shared by a cache in front, since it sets a cookie.
        cookies.set("flavour", "plain")
        return "plain cookie"

    @app.route("/own-cookie-policy/")
    @prerender(False)
    def own_cookie_policy() -> str:
        cookies.set("flavour", "own")
        response.headers["Cache-Control"] = "no-cache"
        return "own cookie policy"

    @app.route("/purge/<tag>", methods=["POST"])
    @prerender(False)
    def purge(tag: str) -> dict[str, int]:
        # revalidate() from a view: what an admin page's button does.
        return {"purged": revalidate(tag=tag)}

    return app
