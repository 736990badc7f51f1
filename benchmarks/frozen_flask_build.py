"""The baseline build: Frozen-Flask's own Freezer on the benchmark site, into argv[1]."""

import os
import sys

os.environ["BENCH_ONDEMAND"] = "0"

import benchsite

app = benchsite.create_app()
app.config["FREEZER_DESTINATION"] = sys.argv[1]
app.extensions["bench.freezer"].freeze()
