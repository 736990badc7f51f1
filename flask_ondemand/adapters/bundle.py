"""A function bundle: the slim app with its code, for hosts that run Python functions.

A serverless host gets a folder, not a virtualenv, so the bundle holds the code the app ran at
build time: every module it had imported (the project's and its dependencies', standard library
aside), the template folders that sit outside those packages, and a copy of the manifest that
tells :func:`flask_ondemand.loader.load_slim_app` how to import the app from the bundle.
"""

from __future__ import annotations

import importlib
import shutil
import sys
import sysconfig
from collections.abc import Iterable, Iterator
from dataclasses import replace
from pathlib import Path

from ..manifest import MANIFEST_NAME
from . import Site

# Imported by the build's tools, never by an app at run time.
_BUILD_ONLY = frozenset({"pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel"})
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


def write_bundle(site: Site, folder: Path, *, extra_modules: Iterable[str] = ()) -> None:
    """Write the slim app's code and manifest into ``folder``.

    :param extra_modules: modules the function needs that the build did not import, such as
        the host's WSGI adapter (``apig_wsgi``).
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in extra_modules:
        importlib.import_module(name)
    copied: list[Path] = []
    for source in sorted(set(_loaded_top_level_paths())):
        target = folder / source.name
        if source.is_dir():
            shutil.copytree(source, target, ignore=_IGNORE, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target)
        copied.append(source)
    for templates in _template_folders(site):
        inside_copied = any(templates.is_relative_to(path) for path in copied if path.is_dir())
        if not inside_copied and templates.is_relative_to(site.project_root):
            target = folder / templates.relative_to(site.project_root)
            shutil.copytree(templates, target, ignore=_IGNORE, dirs_exist_ok=True)
    # In the bundle, the app's code sits beside the manifest.
    replace(site.manifest, project_root=".").write(folder / MANIFEST_NAME)


def _loaded_top_level_paths() -> Iterator[Path]:
    """The file or package folder of every top-level module imported now, but the standard
    library's and the build tools'."""
    stdlib = {Path(sysconfig.get_paths()[key]).resolve() for key in ("stdlib", "platstdlib")}
    for name in sorted({name.partition(".")[0] for name in list(sys.modules)}):
        module = sys.modules.get(name)
        file = getattr(module, "__file__", None)
        if name in _BUILD_ONLY or name.startswith("__editable__") or name == "__main__" or not file:
            continue
        path = Path(file).resolve()
        if path.name == "__init__.py":
            path = path.parent
        elif path.suffix not in (".py", ".so", ".pyd"):
            continue
        if any(path.is_relative_to(root) for root in stdlib) and "site-packages" not in path.parts:
            continue
        yield path


def _template_folders(site: Site) -> Iterator[Path]:
    for scaffold in [site.app, *site.app.blueprints.values()]:
        if scaffold.template_folder:
            folder = (Path(scaffold.root_path) / scaffold.template_folder).resolve()
            if folder.is_dir():
                yield folder
