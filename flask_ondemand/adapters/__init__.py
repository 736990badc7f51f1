"""Adapters: turn one build into what a host runs.

An adapter is one module with a class that has a ``name`` and a ``write(site)`` method. It reads
the finished build (its manifest and client files, see :class:`Site`) and writes the host's
layout into the build's own folder, before the build is swapped in: so an adapter's output is
as atomic as the build, and a failing adapter leaves the previous build as it was. Each
top-level entry it writes is linked from ``DIR``, as ``client`` is.

Options come from the app's config, as ``ONDEMAND_<ADAPTER>_<OPTION>``. Third-party adapters
are found through the ``flask_ondemand.adapters`` entry point group, by name.
"""

from __future__ import annotations

import importlib
import json
import os
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path
from typing import Any, Protocol

from flask import Flask

from ..errors import ConfigError
from ..layout import CLIENT, base_of, copy_client_files, with_siblings
from ..manifest import Manifest

ENTRY_POINT_GROUP = "flask_ondemand.adapters"

BUILTIN = {
    "wsgi": "flask_ondemand.adapters.wsgi:WsgiAdapter",
    "nginx": "flask_ondemand.adapters.nginx:NginxAdapter",
    "vercel": "flask_ondemand.adapters.vercel:VercelAdapter",
    "netlify": "flask_ondemand.adapters.netlify:NetlifyAdapter",
    "cloudflare": "flask_ondemand.adapters.cloudflare:CloudflareAdapter",
    "aws-lambda": "flask_ondemand.adapters.aws_lambda:AwsLambdaAdapter",
}


@dataclass(frozen=True)
class Site:
    """A finished build, as an adapter sees it."""

    #: The build folder the user named (``DIR``); the build is linked from it as ``current``.
    out_dir: Path
    #: This build's own folder; an adapter writes here. ``client/`` and ``manifest.json`` are in it.
    build_dir: Path
    manifest: Manifest
    #: The app's config.
    config: Mapping[str, Any]
    #: The project folder the app was built from (where ``flask`` ran).
    project_root: Path
    #: The app itself, for adapters that bundle its code for a function.
    app: Flask

    @property
    def client(self) -> Path:
        """This build's own client folder: for a partial build, only the pages re-rendered
        since its base. :meth:`copy_client` gives them all."""
        return self.build_dir / CLIENT

    def copy_client(self, target: Path) -> None:
        """Put all the client files in ``target`` too, as hard links where possible: for a
        partial build, those it takes from its base as well."""
        copy_client_files(self.build_dir, self.manifest.files.values(), target)

    def base_files_not_served(self) -> set[str]:
        """Files of a partial build's base that the build does not serve, for hosts that
        find files by path rather than through the manifest: those of pages it dropped, and
        the precompressed copies of a page it re-rendered without them."""
        base = base_of(self.build_dir)
        if base is None:
            return set()
        in_base = {
            os.path.relpath(os.path.join(folder, name), base)
            for folder, _, names in os.walk(base)
            for name in names
        }
        from_base = {
            name
            for file in self.manifest.files.values()
            if not (self.client / file).exists()
            for name in with_siblings(file)
        }
        return {name for name in in_base - from_base if not (self.client / name).exists()}

    def shown(self, path: Path) -> str:
        """``path`` as a user would type it here: relative to the current folder if inside."""
        try:
            return str(path.relative_to(Path.cwd().resolve())) or "."
        except ValueError:
            return str(path)

    def option(self, adapter: str, key: str, default: Any = None) -> Any:
        """Read ``ONDEMAND_<ADAPTER>_<KEY>`` from the app's config."""
        name = f"ONDEMAND_{adapter.upper().replace('-', '_')}_{key.upper()}"
        return self.config.get(name, default)


@dataclass(frozen=True)
class Deployment:
    """What an adapter wrote, and how to deploy it."""

    #: Top-level names the adapter wrote in ``build_dir``; each is linked from ``DIR``.
    entries: tuple[str, ...]
    #: The one command or setting needed to deploy the output.
    instructions: str


class Adapter(Protocol):
    name: str

    def write(self, site: Site) -> Deployment: ...


@dataclass(frozen=True)
class Variable:
    """A ``<converter(args):name>`` part of a Werkzeug rule."""

    name: str
    converter: str

    @property
    def takes_slashes(self) -> bool:
        return self.converter == "path"


_VARIABLE = re.compile(
    r"<(?:(?P<converter>[A-Za-z_]\w*)(?:\((?P<args>.*?)\))?:)?(?P<name>[A-Za-z_]\w*)>"
)


def write_json(path: Path, data: object) -> None:
    """Write a host's JSON file, indented for whoever reads it."""
    path.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")


def rule_parts(rule: str) -> Iterator[str | Variable]:
    """Split a Werkzeug rule into its fixed text and its variables, for writing host patterns."""
    position = 0
    for match in _VARIABLE.finditer(rule):
        if match.start() > position:
            yield rule[position : match.start()]
        yield Variable(match["name"], match["converter"] or "default")
        position = match.end()
    if position < len(rule):
        yield rule[position:]


def known_adapters() -> list[str]:
    """The built-in adapters and those installed through the entry point group."""
    return sorted({*BUILTIN, *(ep.name for ep in entry_points(group=ENTRY_POINT_GROUP))})


def get_adapter(name: str) -> Adapter:
    """Return the adapter called ``name``, built-in or installed.

    :raises ConfigError: for an unknown name, listing the known ones.
    """
    if name in BUILTIN:
        module, _, attribute = BUILTIN[name].partition(":")
        adapter_class = getattr(importlib.import_module(module), attribute)
    else:
        found = [ep for ep in entry_points(group=ENTRY_POINT_GROUP) if ep.name == name]
        if not found:
            raise ConfigError(
                f"unknown adapter {name!r}. Known adapters: {', '.join(known_adapters())}"
            )
        adapter_class = found[0].load()
    adapter: Adapter = adapter_class()
    return adapter
