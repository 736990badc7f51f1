"""The adapter interface: choosing an adapter, third-party adapters, and what stays atomic."""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

from flask import Flask

from flask_ondemand.adapters import Site, Variable, known_adapters, rule_parts
from flask_ondemand.adapters.cdn import LiveQuery, live_pages, live_query_pages
from flask_ondemand.manifest import Manifest, Redirect, RuleEntry

from .servers import flask, snapshot

BUILTIN = ["aws-lambda", "cloudflare", "netlify", "nginx", "vercel", "wsgi"]


def test_builtin_adapters_are_known() -> None:
    assert set(BUILTIN) <= set(known_adapters())


def test_an_unknown_adapter_lists_the_known_ones(project: Path) -> None:
    flask(project, "ondemand", "build")
    before = snapshot(project / "dist")
    result = flask(project, "ondemand", "build", "--adapter", "heroku", check=False)
    assert result.returncode == 1
    assert f"unknown adapter 'heroku'. Known adapters: {', '.join(BUILTIN)}" in result.stderr
    assert snapshot(project / "dist") == before


def test_the_config_key_chooses_the_adapter(project: Path) -> None:
    result = flask(project, "ondemand", "build", env={"FLASK_ONDEMAND_ADAPTER": '"nginx"'})
    assert (project / "dist/nginx.conf").is_file()
    assert "Wrote dist/nginx.conf" in result.stdout


def test_switching_adapters_removes_the_old_output(project: Path) -> None:
    flask(project, "ondemand", "build", "--adapter", "nginx")
    flask(project, "ondemand", "build", "--adapter", "wsgi")
    assert not os.path.lexists(project / "dist/nginx.conf")
    assert (project / "dist/server.py").is_file()


def test_a_failing_adapter_leaves_the_previous_build(project: Path) -> None:
    flask(project, "ondemand", "build")
    before = snapshot(project / "dist")
    result = flask(project, "ondemand", "build", "--adapter", "netlify", check=False)
    assert result.returncode == 1
    assert "the netlify adapter needs ONDEMAND_NETLIFY_ORIGIN" in result.stderr
    assert snapshot(project / "dist") == before


def test_hosts_get_every_file_of_a_partial_build(project: Path) -> None:
    """An adapter that hands a host one folder of files gets the same folder from partial
    builds as from a whole build of the same site: the re-rendered pages, the others from
    the base, and nothing of a page that is gone."""
    origin = {"FLASK_ONDEMAND_NETLIFY_ORIGIN": '"http://127.0.0.1:8000"'}
    now = {**origin, "SITE_VERSION": "2", "SITE_GONE": "hello,guide"}
    now["FLASK_FREEZER_IGNORE_404_NOT_FOUND"] = "true"
    netlify = ("ondemand", "build", "--adapter", "netlify")
    flask(project, *netlify, env=origin)
    flask(project, *netlify, "--only", "/about/", env=now)
    flask(project, *netlify, "--only", "/hello", env=now)
    flask(project, *netlify, "--only", "/guide/", env=now)  # a page with a folder of its own
    flask(project, *netlify, "--out", "whole", env=now)
    partly = snapshot(project / "dist/current/netlify")
    assert partly == snapshot(project / "whole/current/netlify")
    assert partly["about/index.html"] == b"About, version 2"
    assert "index.html" in partly  # from the base
    assert "hello" not in partly
    assert "guide" not in partly  # not even its empty folder


def test_a_third_party_adapter_through_the_entry_point_group(project: Path, tmp_path: Path) -> None:
    plugins = tmp_path / "plugins"
    info = plugins / "static_list-1.0.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: static-list\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[flask_ondemand.adapters]\nstatic-list = static_list:StaticListAdapter\n"
    )
    (plugins / "static_list.py").write_text(
        "import json\n"
        "from flask_ondemand.adapters import Deployment\n\n"
        "class StaticListAdapter:\n"
        "    name = 'static-list'\n\n"
        "    def write(self, site):\n"
        "        urls = sorted(site.manifest.files)\n"
        "        prefix = site.option('static-list', 'prefix', '')\n"
        "        listed = json.dumps([prefix + url for url in urls])\n"
        "        (site.build_dir / 'urls.json').write_text(listed)\n"
        "        return Deployment(('urls.json',), 'upload urls.json')\n"
    )
    env = {"PYTHONPATH": str(plugins), "FLASK_ONDEMAND_STATIC_LIST_PREFIX": '"https://x"'}
    result = flask(project, "ondemand", "build", "--adapter", "static-list", env=env)
    assert "Deploy:  upload urls.json" in result.stdout
    urls = json.loads((project / "dist/urls.json").read_text())
    assert "https://x/about/" in urls
    listed = flask(project, "ondemand", "build", "--help", env=env).stdout
    assert "static-list" in listed


def test_rule_parts() -> None:
    assert list(rule_parts("/blog/<slug>/")) == ["/blog/", Variable("slug", "default"), "/"]
    assert list(rule_parts("/p/<int:n>-<any(a, b):x>")) == [
        "/p/",
        Variable("n", "int"),
        "-",
        Variable("x", "any"),
    ]
    assert list(rule_parts("/docs/<path:rest>")) == ["/docs/", Variable("rest", "path")]


def test_live_pages_leave_out_other_routes_pages_and_redirects(tmp_path: Path) -> None:
    """A function host sends a visitor with a live cookie to its function by the pattern of a
    live route: files the pattern also matches (another route's, a prerendered redirect's)
    must stay files, or the slim app would render them as the live route's."""
    app = Flask("live")
    app.config["ONDEMAND_LIVE_COOKIES"] = ["session", "remember-me"]
    for rule, endpoint in [("/user/<name>/", "user"), ("/user/special/", "special")]:
        app.add_url_rule(rule, endpoint, lambda **kwargs: "")
    manifest = Manifest(
        None,
        ".",
        files={url: url.strip("/") + "/index.html" for url in ("/user/ada/", "/user/special/")}
        | {"/user/old/": "user/old/index.html"},
        redirects={"/user/old/": Redirect(301, "/user/ada/")},
        prerendered=[
            RuleEntry("/user/<name>/", "user", ["GET"], live_cookies=True),
            RuleEntry("/user/special/", "special", ["GET"]),
            RuleEntry("/static/<path:filename>", "static", ["GET"]),
        ],
    )
    site = Site(tmp_path, tmp_path, manifest, app.config, tmp_path, app)
    live = live_pages(site)
    assert live is not None
    assert live.cookies == ("session", "remember-me")
    assert live.urls == {"/user/ada/"}
    [(rule, pattern)] = live.patterns
    assert rule == "/user/<name>/"
    assert [url for url in ("/user/ada/", "/user/ada", "/user/new/") if re.match(pattern, url)] == [
        "/user/ada/",
        "/user/ada",
        "/user/new/",
    ]
    for other in ("/user/special/", "/user/special", "/user/old/", "/user/ada/x/"):
        assert not re.match(pattern, other), other
    app.config["ONDEMAND_LIVE_COOKIES"] = []
    assert live_pages(site) is None


def test_live_query_pages_are_each_routes_own_pages_but_redirects(tmp_path: Path) -> None:
    """The pages whose queries a host sends to the app, by the live_query route they are of
    (not another route whose rule matches them too), with the parameters the route's pages
    looked up; a prerendered redirect answers whatever the query."""
    app = Flask("queries")
    for rule, endpoint in [("/tag/<name>/", "tag"), ("/tag/all/", "every"), ("/", "index")]:
        app.add_url_rule(rule, endpoint, lambda **kwargs: "")
    tags = ("/tag/a/", "/tag/b/", "/tag/old/", "/tag/all/")
    manifest = Manifest(
        None,
        ".",
        files={url: url.strip("/") + "/index.html" for url in tags} | {"/": "index.html"},
        redirects={"/tag/old/": Redirect(301, "/tag/a/")},
        live_query={"/tag/a/", "/tag/b/", "/tag/old/"},
        prerendered=[
            RuleEntry("/tag/<name>/", "tag", ["GET"], live_query=True, query_keys=("page",)),
            RuleEntry("/tag/all/", "every", ["GET"]),
            RuleEntry("/", "index", ["GET"], live_query=True, query_keys=()),  # no page
        ],
    )
    site = Site(tmp_path, tmp_path, manifest, app.config, tmp_path, app)
    assert live_query_pages(site) == [
        LiveQuery("/tag/<name>/", "tag", ("/tag/a/", "/tag/b/"), ("page",))
    ]
