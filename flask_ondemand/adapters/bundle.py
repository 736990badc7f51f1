"""A function bundle: the slim app with its code, for hosts that run Python functions.

A serverless host gets a folder, not a virtualenv. The bundle holds what the app ran at build
time: every module it had imported (standard library aside), the template folders that sit
outside those packages, and a copy of the manifest that tells
:func:`flask_ondemand.loader.load_slim_app` how to import the app from the bundle.

A module from a package installed from an index is not copied: the build machine's files may be
compiled for another Python or CPU. The package is installed again, at the version the build
ran, by ``pip install --target`` for the host's Python and platform, wheels only, with its
metadata. The rest (the project's own code, packages installed from a folder or in editable
mode) is copied as it is, with the metadata of its distribution, if any.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from ..errors import BuildError
from ..manifest import MANIFEST_NAME
from . import Site

# Imported by the build's tools, never by an app at run time.
_BUILD_ONLY = frozenset({"pip", "setuptools", "pkg_resources", "_distutils_hack", "wheel"})
_IGNORE = shutil.ignore_patterns("__pycache__", "*.pyc")


@dataclass(frozen=True)
class Target:
    """The Python and platform a host runs a function on, as pip names them."""

    #: "3.12"
    python: str
    #: pip's platform tags, e.g. ("manylinux2014_x86_64", "manylinux_2_28_x86_64").
    platforms: tuple[str, ...]


def linux(python: str, machine: str) -> Target:
    """An Amazon Linux 2023 function (glibc 2.34), as Lambda and Vercel run: wheels for
    manylinux up to glibc 2.34 on ``machine`` ("x86_64" or "aarch64")."""
    glibc = [f"manylinux_2_{minor}_{machine}" for minor in range(17, 35)]
    return Target(python, (f"manylinux2014_{machine}", *glibc))


def write_bundle(
    site: Site,
    folder: Path,
    *,
    target: Target | None,
    packages: Path | None = None,
    extra_requirements: Iterable[str] = (),
    extra_modules: Iterable[str] = (),
) -> list[str]:
    """Write the slim app's code and manifest into ``folder``, and install the packages it
    needs into ``packages`` (``folder`` itself by default) for ``target``.

    :param target: the host's Python and platform; None to install nothing, for a host that
        installs the requirements itself (they are returned).
    :param extra_requirements: packages the function needs that the build does not have, such
        as the host's launcher ("vercel-runtime==0.24.1").
    :param extra_modules: modules the function needs that the build did not import, such as
        the host's WSGI adapter (``apig_wsgi``).
    :return: the requirements, ``name==version``, sorted.
    """
    folder.mkdir(parents=True, exist_ok=True)
    for name in extra_modules:
        importlib.import_module(name)
    requirements = set(extra_requirements)
    copied: list[Path] = []
    by_module = importlib.metadata.packages_distributions()
    for name, source in sorted(_loaded_top_level_modules()):
        distribution = _distribution(by_module.get(name, []), source)
        if distribution is not None and _from_an_index(distribution, source):
            requirements.add(f"{distribution.metadata['Name']}=={distribution.version}")
            continue
        target_path = folder / source.name
        if source.is_dir():
            shutil.copytree(source, target_path, ignore=_IGNORE, dirs_exist_ok=True)
        else:
            shutil.copy2(source, target_path)
        if distribution is not None:
            _write_metadata(distribution, folder)
        copied.append(source)
    for templates in _template_folders(site):
        inside_copied = any(templates.is_relative_to(path) for path in copied if path.is_dir())
        if not inside_copied and templates.is_relative_to(site.project_root):
            target_path = folder / templates.relative_to(site.project_root)
            shutil.copytree(templates, target_path, ignore=_IGNORE, dirs_exist_ok=True)
    # In the bundle, the app's code sits beside the manifest.
    replace(site.manifest, project_root=".").write(folder / MANIFEST_NAME)
    listed = sorted(requirements, key=str.lower)
    if target is not None and listed:
        install(listed, packages or folder, target)
    return listed


def install(requirements: list[str], folder: Path, target: Target) -> None:
    """``pip install --target folder`` for the host's Python and platform, wheels only.

    The versions of the build's other installed packages constrain what pip picks for the
    dependencies the build never imported.
    """
    with tempfile.TemporaryDirectory() as temporary:
        constraints = Path(temporary) / "constraints.txt"
        constraints.write_text("\n".join(sorted(_installed_from_an_index())) + "\n")
        command = [sys.executable, "-m", "pip", "install", "--quiet", "--no-input"]
        command += ["--disable-pip-version-check", "--target", str(folder), "--no-compile"]
        # pip checks Requires-Python against the Python it runs on, not the --python-version
        # it installs for: every version is pinned, so the check is left to that version.
        command += ["--only-binary=:all:", "--implementation", "cp", "--ignore-requires-python"]
        command += ["--python-version", target.python, "--constraint", str(constraints)]
        command += [f"--platform={platform}" for platform in target.platforms]
        try:
            result = subprocess.run(
                [*command, *requirements], capture_output=True, text=True, timeout=600
            )
        except (OSError, subprocess.TimeoutExpired) as error:
            raise BuildError(
                f"could not run pip to install the function's packages: {error}"
            ) from None
    if result.returncode != 0:
        if "No module named pip" in result.stderr:
            raise BuildError(
                "the function's packages are installed with pip, which this Python lacks:"
                " python -m ensurepip"
            )
        lines = result.stderr.strip().splitlines()
        detail = [line for line in lines if not line.startswith("WARNING:")][-3:]
        raise BuildError(
            f"pip could not install the function's packages ({' '.join(requirements)}) for"
            f" Python {target.python} on {target.platforms[0]}: " + " ".join(detail)
        )


def _distribution(names: list[str], source: Path) -> importlib.metadata.Distribution | None:
    """The distribution the module at ``source`` was installed with: the one of ``names``
    beside it, not another by the same name that comes first on ``sys.path`` (a project
    checkout's ``*.egg-info``, when the build runs from the checkout)."""
    found = []
    for name in names:
        for distribution in importlib.metadata.distributions(name=name):
            found.append(distribution)
            if Path(str(distribution.locate_file(""))).resolve() == source.parent.resolve():
                return distribution
    return found[0] if found else None


def _from_an_index(distribution: importlib.metadata.Distribution, source: Path) -> bool:
    """Whether the module at ``source`` is that of a package installed from an index, which
    pip can install again: in a site-packages folder, without a ``direct_url.json`` (which
    pip writes for a folder, a file or a repository)."""
    installed = {"site-packages", "dist-packages"} & set(source.parts)
    return bool(installed) and distribution.read_text("direct_url.json") is None


def _installed_from_an_index() -> Iterator[str]:
    for distribution in importlib.metadata.distributions():
        name = distribution.metadata["Name"]
        if name and distribution.read_text("direct_url.json") is None:
            yield f"{name}=={distribution.version}"


def _write_metadata(distribution: importlib.metadata.Distribution, folder: Path) -> None:
    """The metadata of a copied distribution, so that ``importlib.metadata`` finds it."""
    metadata = distribution.read_text("METADATA")
    if metadata is None:  # an .egg-info folder, as a project's own checkout has
        return
    name = distribution.metadata["Name"].replace("-", "_")
    info = folder / f"{name}-{distribution.version}.dist-info"
    info.mkdir(exist_ok=True)
    for file in ("METADATA", "entry_points.txt", "top_level.txt"):
        text = distribution.read_text(file)
        if text is not None:
            (info / file).write_text(text, encoding="utf-8")


def _loaded_top_level_modules() -> Iterator[tuple[str, Path]]:
    """The name and the file or package folder of every top-level module imported now, but
    the standard library's and the build tools'."""
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
        yield name, path


def _template_folders(site: Site) -> Iterator[Path]:
    for scaffold in [site.app, *site.app.blueprints.values()]:
        if scaffold.template_folder:
            folder = (Path(scaffold.root_path) / scaffold.template_folder).resolve()
            if folder.is_dir():
                yield folder
