"""Cloudflare: a Python Worker with static assets.

Writes ``DIR/cloudflare/``, a Wrangler project: ``wrangler.toml`` (the ``python_workers`` flag
and an ``[assets]`` folder), ``public/`` (the client files; Cloudflare serves an asset when one
matches and runs the Worker otherwise; ``_redirects`` and ``_headers`` there give prerendered
redirects their status and files their type and headers, in the format Netlify reads too), and
``src/entry.py``, which serves the slim app through ``workers.wsgi``, with the app's code beside
it. ``public/_routes.json`` lists where the Worker
must run, for Cloudflare Pages, within its limit of 100 rules (collapsed as needed); it is kept
out of the uploaded assets by ``public/.assetsignore``.

Options: ``ONDEMAND_CLOUDFLARE_NAME`` (the Worker's name; default: the app's),
``ONDEMAND_CLOUDFLARE_COMPATIBILITY_DATE`` (default "2026-08-28").
"""

from __future__ import annotations

import re

from ..routes import is_static_view
from . import Deployment, Site, Variable, rule_parts, write_json
from .bundle import write_bundle
from .cdn import headers_file, redirect_lines

FOLDER = "cloudflare"
ROUTES_LIMIT = 100

_ENTRY = '''\
"""The on-demand half of a flask_ondemand build, as a Cloudflare Python Worker."""

from workers import WorkerEntrypoint, wsgi

from flask_ondemand.loader import load_slim_app

app = load_slim_app(__file__)


class Default(WorkerEntrypoint):
    async def fetch(self, request):
        return await wsgi.fetch(app, request, self.env)
'''


class CloudflareAdapter:
    name = "cloudflare"

    def write(self, site: Site) -> Deployment:
        folder = site.build_dir / FOLDER
        write_bundle(site, folder / "src", target=None)
        (folder / "src" / "entry.py").write_text(_ENTRY, encoding="utf-8")
        site.copy_client(folder / "public")
        write_json(folder / "public" / "_routes.json", routes_json(site))
        (folder / "public" / ".assetsignore").write_text(
            "_routes.json\n.assetsignore\n", encoding="utf-8"
        )
        redirects = "\n".join(["# Written by flask_ondemand.", *redirect_lines(site, force=False)])
        (folder / "public" / "_redirects").write_text(redirects + "\n", encoding="utf-8")
        headers, _ = headers_file(site, detach=True)
        (folder / "public" / "_headers").write_text(headers, encoding="utf-8")
        name = site.option(self.name, "name") or re.sub(
            r"[^a-z0-9-]+", "-", site.app.name.lower()
        ).strip("-")
        date = site.option(self.name, "compatibility_date", "2026-08-28")
        (folder / "wrangler.toml").write_text(
            f'name = "{name}"\n'
            'main = "src/entry.py"\n'
            f'compatibility_date = "{date}"\n'
            'compatibility_flags = ["python_workers"]\n'
            "\n"
            "[assets]\n"
            'directory = "public"\n'
            'binding = "ASSETS"\n',
            encoding="utf-8",
        )
        return Deployment(
            (FOLDER,), f"cd {site.shown(site.out_dir)}/{FOLDER} && npx wrangler deploy"
        )


def routes_json(site: Site) -> dict[str, object]:
    """Where the Worker runs: every on-demand rule, as Cloudflare's ``*`` patterns.

    Static folders are excluded. When the rules exceed the limit, patterns are cut to their
    first path segment (``/shop/cart/add`` to ``/shop/*``), and at worst to ``/*``.
    """
    manifest = site.manifest
    exclude = sorted(
        {
            wildcard_pattern(entry.rule)
            for entry in manifest.prerendered
            if is_static_view(site.app, entry.endpoint)
        }
    )
    include = _minimal({wildcard_pattern(entry.rule) for entry in manifest.on_demand})
    if len(include) + len(exclude) > ROUTES_LIMIT:
        include = _minimal({_first_segment(pattern) for pattern in include})
    if not include or len(include) + len(exclude) > ROUTES_LIMIT:
        include = ["/*"]
    return {"version": 1, "include": include, "exclude": exclude[: ROUTES_LIMIT - len(include)]}


def wildcard_pattern(rule: str) -> str:
    """A Werkzeug rule as a Cloudflare pattern: from its first variable on, ``*``."""
    fixed = ""
    for part in rule_parts(rule):
        if isinstance(part, Variable):
            return fixed + "*"
        fixed += part
    return fixed


def _first_segment(pattern: str) -> str:
    segments = pattern.split("/")
    return pattern if len(segments) <= 2 else f"/{segments[1]}/*"


def _minimal(patterns: set[str]) -> list[str]:
    """Drop the patterns another ``…*`` pattern already covers."""
    wildcards = [p[:-1] for p in patterns if p.endswith("*")]
    return sorted(
        p for p in patterns if not any(p != w + "*" and p.startswith(w) for w in wildcards)
    )
