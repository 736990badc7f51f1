"""Server islands in the test site: a prerendered page with three islands (the visitor's name,
a badge with a value, one that fails), and a prerendered listing whose queries render live."""

from __future__ import annotations

from flask import Blueprint, render_template, request, session

from flask_ondemand import island, prerender, response

isles = Blueprint("isles", __name__, url_prefix="/isles")


@isles.route("/")
def page() -> str:
    return render_template("isles.html")


@isles.route("/_user")
@island
def user() -> str:
    name = session.get("user")
    return f"<span>Signed in as {name}</span>" if name else "<a href=/login>Sign in</a>"


@isles.route("/_badge")
@island
def badge() -> str:
    return f"<i>badge of size {request.args['size']}</i>"


@isles.route("/_broken")
@island
def broken() -> str:
    raise RuntimeError("this island always fails")


@isles.route("/_cached")
@island
def cached() -> str:
    response.headers["Cache-Control"] = "private, max-age=60"  # its own, kept
    return "<p>cached for its visitor</p>"


@isles.route("/listing/")
@prerender(live_query=True)
def listing() -> str:
    # The bare URL is a file; with ?page=N the app renders it.
    return f"Listing page {request.args.get('page', '1')}"
