from datetime import datetime, timezone

from flask import Blueprint, Flask

from flask_ondemand import OnDemand, prerender

ondemand = OnDemand()
pages = Blueprint("pages", __name__)


@pages.route("/")
def index():
    return "<h1>Home</h1>"


@pages.route("/about/")
def about():
    return "<h1>About</h1>"


@pages.route("/now/")
@prerender(False)
def now():
    return f"<p>It is {datetime.now(timezone.utc):%H:%M:%S} UTC.</p>"


def create_app():
    app = Flask(__name__)
    app.config["SECRET_KEY"] = "change-me"  # read it from the environment in a real app
    ondemand.init_app(app)
    app.register_blueprint(pages)
    return app
