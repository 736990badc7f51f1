from __future__ import annotations

import pytest
from flask import Flask

from flask_ondemand import ConfigError, OnDemand
from flask_ondemand.extension import DEFAULTS, get_app
from flask_ondemand.routes import Mode


def test_init_app_registers_and_sets_defaults() -> None:
    app = Flask(__name__)
    app.config["ONDEMAND_OUT_DIR"] = "public"
    ondemand = OnDemand(app)
    assert app.extensions["ondemand"] is ondemand
    assert app.config["ONDEMAND_OUTPUT"] == "static"
    assert app.config["ONDEMAND_OUT_DIR"] == "public"  # a value set before is kept
    assert set(DEFAULTS) <= set(app.config)


def test_second_registration_is_refused() -> None:
    app = Flask(__name__)
    OnDemand(app)
    with pytest.raises(RuntimeError, match="already been registered on this Flask app"):
        OnDemand().init_app(app)


def test_one_instance_serves_several_apps_of_a_factory() -> None:
    ondemand = OnDemand()
    first, second = Flask("first"), Flask("second")
    second.config["ONDEMAND_OUTPUT"] = "server"
    for app in (first, second):
        ondemand.init_app(app)
        app.add_url_rule("/", "index", lambda: "")
    with first.app_context():
        assert [r.mode for r in ondemand.routes() if r.endpoint == "index"] == [Mode.PRERENDERED]
    with second.app_context():
        assert [r.mode for r in ondemand.routes() if r.endpoint == "index"] == [Mode.ON_DEMAND]
    assert not hasattr(ondemand, "app")


def test_missing_extension_gets_a_helpful_error() -> None:
    app = Flask("plain")
    with app.app_context(), pytest.raises(ConfigError, match="not set up on the app 'plain'"):
        get_app()
