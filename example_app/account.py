"""The account pages read and write the session, so the whole blueprint is on demand. Its
user menu and its messages are server islands: every page, prerendered or not, shows them."""

from __future__ import annotations

from flask import Blueprint, flash, render_template, request, session, url_for
from werkzeug.wrappers import Response

from flask_ondemand import island, prerender, redirect, safe_redirect

account = prerender(False)(Blueprint("account", __name__, url_prefix="/account"))


@account.route("/")
def home() -> str:
    return render_template("account.html", name=session.get("name"))


@account.route("/login", methods=["POST"])
def login() -> Response:
    session["name"] = request.form.get("name", "").strip()[:40] or "friend"
    flash(f"Welcome, {session['name']}.")
    # "next" comes from the visitor: safe_redirect follows it only if it stays on this site.
    return safe_redirect(request.form.get("next"), url_for("account.home"), 303)


@account.route("/logout", methods=["POST"])
def logout() -> Response:
    session.pop("name", None)
    flash("You are signed out.")
    return redirect(url_for("account.home"), 303)


@account.route("/_menu")
@island
def menu() -> str:
    # The visitor's own menu, in every page: {{ defer("account.menu") }} in base.html.
    return render_template("_menu.html", name=session.get("name"))


@account.route("/_messages")
@island
def messages() -> str:
    # flash() messages, shown by the next page the visitor opens, prerendered or not.
    return render_template("_messages.html")
