"""A small members' blog, made as Flask apps with a login are made: Flask-Login, Flask-WTF with
CSRF on for every form, Flask-Talisman with HTTPS forced and a Content-Security-Policy, flashed
messages, and a user menu in its base template. Its per-user parts sit in server islands, so
its public pages prerender with no warning, in strict mode.

MEMBERS_MENU=inline puts the user menu back into the base template, read from current_user, as
the app was before its islands: the build must then fail, naming the template and the line.
"""

from __future__ import annotations

import os

from flask import Flask, abort, flash, redirect, render_template, url_for
from flask_login import (
    LoginManager,
    UserMixin,
    current_user,
    login_required,
    login_user,
    logout_user,
)
from flask_talisman import Talisman
from flask_wtf import CSRFProtect, FlaskForm
from wtforms import PasswordField, StringField, TextAreaField
from wtforms.validators import DataRequired

from flask_ondemand import OnDemand, island, prerender

POSTS = {1: "Hello, members", 2: "Our second post"}
COMMENTS: dict[int, list[str]] = {1: [], 2: []}


class Member(UserMixin):  # type: ignore[misc]
    def __init__(self, name: str) -> None:
        self.id = name
        self.name = name


MEMBERS = {"ada": "lovelace", "grace": "hopper"}


class LoginForm(FlaskForm):  # type: ignore[misc]
    name = StringField(validators=[DataRequired()])
    password = PasswordField(validators=[DataRequired()])


class CommentForm(FlaskForm):  # type: ignore[misc]
    text = TextAreaField(validators=[DataRequired()])


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY="members-test-secret",
        ONDEMAND_SITE_URL="https://members.example",
        ONDEMAND_STRICT=True,
        TRUSTED_HOSTS=["members.example", "127.0.0.1"],
    )
    app.config.from_prefixed_env()
    OnDemand(app)
    CSRFProtect(app)
    Talisman(app, force_https=True, content_security_policy={"default-src": "'self'"})
    logins = LoginManager(app)
    logins.login_view = "login"

    @logins.user_loader
    def load_member(name: str) -> Member | None:
        return Member(name) if name in MEMBERS else None

    @app.context_processor
    def menu_style() -> dict[str, bool]:
        return {"inline_menu": os.environ.get("MEMBERS_MENU") == "inline"}

    @app.route("/")
    def index() -> str:
        return render_template("index.html", posts=POSTS)

    @app.route("/posts/<int:number>/")
    @prerender(paths=lambda: [{"number": number} for number in POSTS])
    def post(number: int) -> str:
        if number not in POSTS:
            abort(404)
        return render_template("post.html", number=number, title=POSTS[number])

    @app.route("/login", methods=["GET", "POST"])  # takes POST too: on demand
    def login() -> object:
        form = LoginForm()
        if form.validate_on_submit():
            if MEMBERS.get(form.name.data) == form.password.data:
                login_user(Member(form.name.data))
                flash(f"Welcome back, {form.name.data}.")
                return redirect(url_for("index"), 303)
            flash("Wrong name or password.")
        return render_template("login.html", form=form)

    @app.route("/logout", methods=["POST"])
    def logout() -> object:
        logout_user()
        flash("You are logged out.")
        return redirect(url_for("index"), 303)

    @app.route("/_menu")
    @island
    def menu() -> str:
        return render_template("_menu.html")

    @app.route("/_messages")
    @island
    def messages() -> str:
        return render_template("_messages.html")

    @app.route("/posts/<int:number>/_comments")
    @island
    def comments(number: int) -> str:
        return render_template(
            "_comments.html", number=number, comments=COMMENTS[number], form=CommentForm()
        )

    @app.route("/posts/<int:number>/comments", methods=["POST"])
    @login_required
    def comment(number: int) -> object:
        form = CommentForm()
        if form.validate_on_submit():
            COMMENTS[number].append(f"{current_user.name}: {form.text.data}")
            flash("Your comment is in.")
        return redirect(url_for("post", number=number), 303)

    @app.route("/members/")
    @prerender(False)  # behind the login, as every page that depends on who is signed in
    @login_required
    def members() -> str:
        return render_template("members.html", names=sorted(MEMBERS))

    return app
