"""The default adapter: any WSGI server runs ``DIR/server.py``. The build itself writes it."""

from __future__ import annotations

import importlib.util

from . import Deployment, Site


class WsgiAdapter:
    name = "wsgi"

    def write(self, site: Site) -> Deployment:
        return Deployment(
            (), f"gunicorn --chdir {site.shown(site.out_dir)} server:app{gunicorn_missing()}"
        )


def gunicorn_missing() -> str:
    """What the deploy line adds when gunicorn is not installed where the build runs, which is
    where it would import the app: how to get it (a plain install of flask_ondemand lacks it)."""
    if importlib.util.find_spec("gunicorn") is not None:
        return ""
    return (
        " (gunicorn is not installed here: pip install gunicorn, or install flask-ondemand with"
        " its [gunicorn] extra)"
    )
