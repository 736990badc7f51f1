"""The account pages read and write the session, so the whole blueprint is on demand."""

from __future__ import annotations

from flask import Blueprint, render_template, request, session, url_for
from werkzeug.wrappers import Response

from flask_ondemand import prerender, redirect, safe_redirect

account = prerender(False)(Blueprint("account", __name__, url_prefix="/account"))


@account.route("/")
def home() -> str:
    return render_template("account.html", name=session.get("name"))


@account.route("/login", methods=["POST"])
def login() -> Response:
    session["name"] = request.form.get("name", "").strip()[:40] or "friend"
    # "next" comes from the visitor: safe_redirect follows it only if it stays on this site.
    return safe_redirect(request.form.get("next"), url_for("account.home"), 303)


@account.route("/logout", methods=["POST"])
def logout() -> Response:
    session.pop("name", None)
    return redirect(url_for("account.home"), 303)
