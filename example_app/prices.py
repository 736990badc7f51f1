"""A cached page: the same for everyone, rendered on demand at most once a minute, served stale
for ten more minutes while one background render refreshes it, and refreshed at once by a
signed-in visitor's button. The button is an island: the page is never anyone's own."""

from __future__ import annotations

import random
import time

from flask import Blueprint, abort, flash, render_template, session, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response

from flask_ondemand import cache, island, prerender, redirect, revalidate

prices = prerender(False)(Blueprint("prices", __name__, url_prefix="/prices"))

#: What the market sells; each render asks it for today's prices.
GOODS = ("Coffee beans, 1 kg", "Green tea, 100 g", "Cocoa, 250 g")


class RefreshForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no types
    """Only the CSRF token: the button posts nothing else."""


@prices.route("/")
@cache(max_age=60, swr=600, tags=["prices"])
def board() -> str:
    # Stands in for a slow call to a supplier's API: the cache spares it to most visitors.
    quotes = [(name, round(random.uniform(2, 30), 2)) for name in GOODS]
    return render_template("prices.html", quotes=quotes, rendered=time.strftime("%H:%M:%S"))


@prices.route("/_refresh")
@island
def controls() -> str:
    # The visitor's own part of the page: the button and its CSRF token, if signed in.
    form = RefreshForm() if session.get("name") else None
    return render_template("_price_controls.html", form=form)


@prices.route("/refresh", methods=["POST"])
def refresh() -> Response:
    if not session.get("name"):
        abort(403)
    if not RefreshForm().validate_on_submit():
        abort(400)
    revalidate(tag="prices")  # every worker's next request renders it anew
    flash("The prices were refreshed.")
    return redirect(url_for("prices.board"), 303)
