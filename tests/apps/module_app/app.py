"""A module-level app in app.py, found by Flask's discovery without --app."""

from flask import Flask, session

from flask_ondemand import OnDemand, prerender

app = Flask(__name__)
app.config["SECRET_KEY"] = "module-secret"
OnDemand(app)


@app.route("/")
def index() -> str:
    return "Module app index"


@app.route("/me")
@prerender(False)
def me() -> str:
    return f"Visits: {session.get('visits', 0)}"
