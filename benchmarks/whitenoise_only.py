"""The serving baseline: WhiteNoise alone serving a build's client folder.

gunicorn --chdir benchmarks whitenoise_only:app, with BENCH_CLIENT set to the folder.
"""

import os

from whitenoise import WhiteNoise


def not_found(environ, start_response):  # type: ignore[no-untyped-def]
    start_response("404 Not Found", [("Content-Length", "0")])
    return [b""]


app = WhiteNoise(
    not_found, root=os.environ["BENCH_CLIENT"], index_file=True, max_age=0, allow_all_origins=False
)
