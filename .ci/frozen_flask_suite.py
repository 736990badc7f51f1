"""Run Frozen-Flask 1.0.2's own test suite against flask_ondemand.Freezer.

The suite comes from Frozen-Flask's sdist on PyPI, downloaded into a temporary folder; none of
its files are kept. ``flask_frozen.Freezer`` is replaced before the suite imports it, so every
``Freezer`` it makes is ours.
"""

from __future__ import annotations

import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path

VERSION = "1.0.2"


def main() -> int:
    with tempfile.TemporaryDirectory() as temporary:
        folder = Path(temporary)
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "download",
                "--quiet",
                "--no-binary",
                ":all:",
                "--no-deps",
                f"frozen-flask=={VERSION}",
                "--dest",
                str(folder),
            ],
            check=True,
        )
        (sdist,) = folder.glob("*.tar.gz")
        with tarfile.open(sdist) as archive:
            archive.extractall(folder, filter="data")
        tests = folder / f"frozen_flask-{VERSION}" / "tests"

        import flask_frozen

        import flask_ondemand

        flask_frozen.Freezer = flask_ondemand.Freezer

        import pytest

        status = int(
            pytest.main([str(tests), "-q", "-p", "no:cacheprovider", "--rootdir", str(tests)])
        )
        suite_freezer = sys.modules["test_app"].Freezer
        if suite_freezer is not flask_ondemand.Freezer:
            print(f"The suite ran with {suite_freezer!r}, not flask_ondemand.Freezer")
            return 1
        return status


if __name__ == "__main__":
    sys.exit(main())
