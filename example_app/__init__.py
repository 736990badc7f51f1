"""A small blog built with flask_ondemand: most pages are files, a few run per request.

Build and serve it from the repository root::

    flask --app example_app ondemand build
    gunicorn --chdir dist server:app
"""

from __future__ import annotations

import os
import random
import time

from flask import Flask, flash, render_template, request, url_for
from flask_wtf import FlaskForm
from werkzeug.wrappers import Response
from wtforms import StringField
from wtforms.validators import DataRequired, Length

from flask_ondemand import OnDemand, cookies, island, prerender, redirect, response, stream

from .account import account
from .blog import blog
from .posts import POSTS
from .prices import prices

#: Posts on a page of the index.
PER_PAGE = 2
#: What every page may load: its own site's files only, so no script can be injected into it
#: (the islands' script is one of the site's files), and no other site may frame it.
SECURITY_HEADERS = {
    "Content-Security-Policy": "default-src 'self'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
}


class ContactForm(FlaskForm):  # type: ignore[misc]  # Flask-WTF ships no types
    name = StringField("Your name", validators=[DataRequired(), Length(max=40)])


def create_app() -> Flask:
    app = Flask(__name__)
    app.config.from_mapping(
        # Only for trying the example: set SECRET_KEY in the environment of a real deployment.
        SECRET_KEY=os.environ.get("SECRET_KEY", "example-only-not-a-secret"),
        # The hosts the site answers for (Flask 3.1): a request naming another host gets 400,
        # so no URL the app builds names a host a client chose. Set your own in production:
        # FLASK_TRUSTED_HOSTS='["example.com"]'.
        TRUSTED_HOSTS=["127.0.0.1", "localhost"],
    )
    # FLASK_ONDEMAND_ADAPTER="nginx", FLASK_ONDEMAND_NETLIFY_ORIGIN="https://..." and the like.
    app.config.from_prefixed_env()
    OnDemand(app)
    app.register_blueprint(blog)
    app.register_blueprint(account)
    app.register_blueprint(prices)

    @app.after_request
    def security_headers(page: Response) -> Response:
        # Set on every answer, as Flask-Talisman does: prerendered pages keep them too.
        for name, value in SECURITY_HEADERS.items():
            page.headers.setdefault(name, value)
        return page

    @app.route("/")
    @prerender(live_query=True)
    def index() -> str:
        # "/" is a file; "/?page=2" is rendered on demand.
        pages = max(1, -(-len(POSTS) // PER_PAGE))
        number = request.args.get("page", 1, type=int)
        number = min(max(number, 1), pages)
        shown = POSTS[(number - 1) * PER_PAGE : number * PER_PAGE]
        return render_template("index.html", posts=shown, page=number, pages=pages)

    @app.route("/about/")
    def about() -> str:
        return render_template("about.html")

    @app.route("/about-us/")
    def old_about() -> Response:
        # A moved page: the build records the redirect, and the server answers it with a 301.
        return redirect(url_for("about"), 301)

    @app.route("/feed.json")
    def feed() -> dict[str, object]:
        # A prerendered endpoint: the dict becomes the file feed.json.
        return {
            "title": "Example blog",
            "items": [
                {"url": url_for("blog.post", slug=post.slug), "title": post.title} for post in POSTS
            ],
        }

    @app.route("/api/random")
    @prerender(False)
    def random_number() -> dict[str, object]:
        # On demand, as in Astro's guide: a new number on every request.
        number = random.random()
        return {"number": number, "message": f"Here's a random number: {number}"}

    @app.route("/visits/")
    @prerender(False)
    def visits() -> str:
        # Astro's cookie counter. The page sets a header too: never cache a personal page.
        visit = cookies.get("visits")
        count = int(visit.number(default=0)) + 1 if visit else 0
        cookies.set("visits", str(count), max_age=60 * 60 * 24 * 365)
        response.headers["Cache-Control"] = "no-store"
        return render_template("visits.html", count=count)

    @app.route("/search/")
    @prerender(False)
    def search() -> str:
        query = request.args.get("q", "").strip().lower()
        found = [post for post in POSTS if query and query in post.title.lower()]
        if query and not found:
            # Astro's product page: a 404 with its own status text, and the page still renders.
            response.status = 404
            response.status_text = "No Posts Found"
        return render_template("search.html", query=query, found=found)

    @app.route("/live/")
    @prerender(False)
    def live() -> Response:
        # The head and the post list go out at once; the comments follow when they are ready.
        cookies.set("seen_live", "yes")  # before the first chunk, so it is sent with it
        return stream("live.html", posts=POSTS, comments=slow_comments)

    @app.route("/contact/", methods=["GET", "POST"])
    @prerender(True)
    def contact() -> Response | tuple[str, int] | str:
        # Marked prerender(True): GET is served from a file, whose form is an island (its
        # CSRF token is the visitor's own); POST still runs here.
        if request.method == "POST":
            form = ContactForm()
            if not form.validate_on_submit():
                return render_template("contact.html", form=form), 400
            flash(f"Thank you, {form.name.data}. We will write back.")
            return redirect(url_for("contact"), 303)
        return render_template("contact.html")

    @app.route("/contact/_form")
    @island
    def contact_form() -> str:
        return render_template("_contact_form.html", form=ContactForm())

    @app.errorhandler(404)
    def not_found(error: Exception) -> tuple[str, int]:
        return render_template("404.html"), 404

    return app


def slow_comments() -> list[str]:
    """Stands in for a slow service: the streamed page shows its head before this returns."""
    time.sleep(1)
    return ["Great post!", "Streaming works."]
