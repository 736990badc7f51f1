"""The build manifest: what a build holds, for the server and for adapters.

``manifest.json`` sits beside the build's ``client/`` folder. Format (version 1)::

    {
      "format": 1,
      "app": {"import": "example_app:create_app()", "project_root": ".."},
      "files": {"/about/": "about/index.html", "/hello": "hello", ...},
      "content_types": {"hello": "text/html; charset=utf-8"},
      "headers": {"feed.json": [["Cache-Control", "max-age=600"]]},
      "redirects": {"/old/": {"status": 301, "location": "/new/"}},
      "prerendered": [{"rule": "/blog/<slug>/", "endpoint": "blog.post", "methods": ["GET"]}],
      "on_demand": [{"rule": "/login", "endpoint": "login", "methods": ["GET", "POST"]}]
    }

- ``app``: how ``DIR/server.py`` imports the app (``flask --app`` syntax, or null for Flask's
  ``wsgi.py``/``app.py`` discovery), and the project folder relative to ``DIR``.
- ``files``: every URL served from a file, and the file's path inside ``client/`` (for a
  partial build, inside ``base-client/`` when its own ``client/`` does not have it).
- ``content_types``: the Content-Type of every file whose name does not tell it.
- ``headers``: headers a prerendered page set with ``response.headers``, to send with its file.
- ``redirects``: prerendered URLs whose view answered with a redirect.
- ``prerendered`` and ``on_demand``: the URL rules, as Werkzeug writes them, with the methods
  the view declares (HEAD and OPTIONS are implied).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from .errors import ManifestError

MANIFEST_NAME = "manifest.json"
FORMAT = 1

#: The statuses a redirect may have: 300 to 308, less 304 Not Modified and the unused 305 and
#: 306, which are not redirects.
REDIRECT_STATUSES = (300, 301, 302, 303, 307, 308)


@dataclass(frozen=True)
class RuleEntry:
    rule: str
    endpoint: str
    methods: list[str]


@dataclass(frozen=True)
class Redirect:
    status: int
    location: str


@dataclass
class Manifest:
    app_import: str | None
    project_root: str
    files: dict[str, str] = field(default_factory=dict)
    content_types: dict[str, str] = field(default_factory=dict)
    headers: dict[str, list[tuple[str, str]]] = field(default_factory=dict)
    redirects: dict[str, Redirect] = field(default_factory=dict)
    prerendered: list[RuleEntry] = field(default_factory=list)
    on_demand: list[RuleEntry] = field(default_factory=list)

    def prerendered_routes(self) -> set[tuple[str, str]]:
        """The prerendered rules as ``(rule, endpoint)`` pairs: what tells two builds' code
        apart, for a server or a partial build."""
        return {(entry.rule, entry.endpoint) for entry in self.prerendered}

    def to_json(self) -> str:
        data = {
            "format": FORMAT,
            "app": {"import": self.app_import, "project_root": self.project_root},
            "files": self.files,
            "content_types": self.content_types,
            "headers": {
                file: [list(pair) for pair in pairs] for file, pairs in self.headers.items()
            },
            "redirects": {url: asdict(redirect) for url, redirect in self.redirects.items()},
            "prerendered": [asdict(entry) for entry in self.prerendered],
            "on_demand": [asdict(entry) for entry in self.on_demand],
        }
        return json.dumps(data, indent=1, ensure_ascii=False) + "\n"

    def write(self, path: Path) -> None:
        path.write_text(self.to_json(), encoding="utf-8")

    @classmethod
    def read(cls, path: Path) -> Manifest:
        """Read and check a manifest; any problem is a :class:`ManifestError` naming the file."""
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise ManifestError(
                f"{path}: no manifest. Run `flask ondemand build` to make a build."
            ) from None
        except (OSError, UnicodeDecodeError, ValueError) as error:
            raise ManifestError(f"{path}: unreadable manifest ({error})") from None
        try:
            return cls._from_data(data)
        except KeyError as error:
            raise ManifestError(f"{path}: not a flask_ondemand manifest (no {error})") from None
        except (TypeError, ValueError, AttributeError) as error:
            raise ManifestError(f"{path}: not a flask_ondemand manifest ({error})") from None

    @classmethod
    def _from_data(cls, data: Any) -> Manifest:
        if data.get("format") != FORMAT:
            raise ValueError(
                f"format {data.get('format')!r}; this flask_ondemand reads format {FORMAT}."
                " Rebuild with this version."
            )
        app = data["app"]
        manifest = cls(
            app_import=_optional_str(app["import"]),
            project_root=_str(app["project_root"]),
            files={_str(url): _str(file) for url, file in data["files"].items()},
            content_types={_str(f): _str(t) for f, t in data["content_types"].items()},
            headers={
                _str(file): [(_str(name), _str(value)) for name, value in pairs]
                for file, pairs in data["headers"].items()
            },
            redirects={
                _str(url): Redirect(int(r["status"]), _str(r["location"]))
                for url, r in data["redirects"].items()
            },
            prerendered=[_rule_entry(entry) for entry in data["prerendered"]],
            on_demand=[_rule_entry(entry) for entry in data["on_demand"]],
        )
        for url, redirect in manifest.redirects.items():
            if redirect.status not in REDIRECT_STATUSES:
                raise ValueError(f"redirect status {redirect.status} for {url}")
        return manifest


def _rule_entry(data: Any) -> RuleEntry:
    return RuleEntry(_str(data["rule"]), _str(data["endpoint"]), [_str(m) for m in data["methods"]])


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _optional_str(value: Any) -> str | None:
    return None if value is None else _str(value)
