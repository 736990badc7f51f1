"""The default adapter: any WSGI server runs ``DIR/server.py``. The build itself writes it."""

from __future__ import annotations

from . import Deployment, Site


class WsgiAdapter:
    name = "wsgi"

    def write(self, site: Site) -> Deployment:
        return Deployment((), f"gunicorn --chdir {site.shown(site.out_dir)} server:app")
