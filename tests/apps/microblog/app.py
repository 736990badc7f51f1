"""A blog shaped like the Flask Mega-Tutorial's microblog, as it is, without islands: Flask-Login,
a user menu in its base template read from current_user, profiles, pagination. It prerenders
with ONDEMAND_LIVE_COOKIES: visitors with a session get their own pages rendered on demand,
the others the files; a profile made after the build renders on demand (fallback="live").

Users are read from users.txt beside this file (one name a line), so a test can add one after
the build. MICROBLOG_BREAK=login_required adds a prerendered page behind @login_required.
"""

from __future__ import annotations

import os
from pathlib import Path

from flask import Flask, abort, redirect, render_template, request, url_for
from flask_login import (
    LoginManager,
    UserMixin,
    login_required,
    login_user,
    logout_user,
)

from flask_ondemand import OnDemand, prerender

USERS = Path(__file__).with_name("users.txt")
POSTS = [f"Post number {n}" for n in range(1, 6)]
PER_PAGE = 2


def users() -> list[str]:
    return USERS.read_text().split() if USERS.exists() else ["ada", "grace"]


class User(UserMixin):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        self.id = self.name = name


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="microblog-test-secret",
        # Flask-Login's sign-in writes the session; "remember me" sets its own cookie.
        ONDEMAND_LIVE_COOKIES=["session", "remember_token"],
    )
    app.config.from_prefixed_env()
    OnDemand(app)
    logins = LoginManager(app)
    logins.login_view = "login"

    @logins.user_loader
    def load_user(name: str) -> User | None:
        return User(name) if name in users() else None

    @app.route("/")
    @prerender(live_query=True)
    def index() -> str:
        page = request.args.get("page", 1, type=int)
        shown = POSTS[(page - 1) * PER_PAGE : page * PER_PAGE]
        return render_template("index.html", posts=shown, page=page)

    @app.route("/user/<name>/")
    @prerender(paths=lambda: [{"name": name} for name in users()], fallback="live")
    def user(name: str) -> str:
        if name not in users():
            abort(404)
        return render_template("user.html", name=name)

    @app.route("/user/staff/")
    @prerender(live_cookies=False)  # a page of its own among the users': the file, always
    def staff() -> str:
        return "Our staff"

    @app.route("/about/")
    @prerender(live_cookies=False)  # the same for everyone: always the file
    def about() -> str:
        return render_template("about.html")

    @app.route("/auth/login", methods=["GET", "POST"])
    def login() -> object:
        if request.method == "POST":
            name = request.form["name"]
            if name in users():
                login_user(User(name), remember=bool(request.form.get("remember")))
                return redirect(url_for("index"), 303)
        return render_template("login.html")

    @app.route("/auth/logout", methods=["POST"])
    def logout() -> object:
        logout_user()
        return redirect(url_for("index"), 303)

    if os.environ.get("MICROBLOG_BREAK") == "login_required":

        @app.route("/explore/")
        @login_required
        def explore() -> str:
            return render_template("index.html", posts=POSTS, page=1)

    return app
