from datetime import datetime, timezone

from flask import Blueprint, Flask, abort, render_template_string

from flask_ondemand import OnDemand, cookies, island, prerender

ondemand = OnDemand()
pages = Blueprint("pages", __name__)

POSTS = {"hello": "Hello, world", "hybrid": "Hybrid rendering"}

HOME = """<!doctype html>
<title>Home</title>
<h1>Home</h1>
{% call defer("pages.visits") %}<p>Welcome!</p>{% endcall %}
"""


@pages.route("/")
def index():
    return render_template_string(HOME)


@pages.route("/about/")
def about():
    return "<h1>About</h1>"


@pages.route("/now/")
@prerender(False)
def now():
    return f"<p>It is {datetime.now(timezone.utc):%H:%M:%S} UTC.</p>"


@pages.route("/posts/<slug>/")
@prerender(paths=lambda: [{"slug": slug} for slug in POSTS])
def post(slug):
    if slug not in POSTS:
        abort(404)
    return f"<h1>{POSTS[slug]}</h1>"


@pages.route("/_visits")
@island
def visits():
    visit = cookies.get("visits")
    count = int(visit.number(default=0)) + 1 if visit else 1
    cookies.set("visits", str(count), max_age=60 * 60 * 24 * 365)
    return f"<p>Visit number {count}.</p>"


def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "change-me"  # read it from the environment in a real app
    ondemand.init_app(app)
    app.register_blueprint(pages)
    return app
