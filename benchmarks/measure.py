"""Run a command and print its wall time and the peak RSS of its largest process, as JSON,
with the build time the command reports itself ("Built DIR in 1.62 s"), if it does.

Usage: python measure.py COMMAND [ARG ...]
"""

import json
import re
import resource
import subprocess
import sys
import time

start = time.perf_counter()
completed = subprocess.run(sys.argv[1:], capture_output=True, text=True)
seconds = time.perf_counter() - start
if completed.returncode:
    sys.exit(f"{' '.join(sys.argv[1:])} failed:\n{completed.stderr}")
# Linux: the peak RSS of the largest descendant waited for, in KiB. Forked workers share
# most of their memory with the parent, so the largest process is the honest figure.
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
reported = re.search(r"^Built .* in ([\d.]+) s", completed.stdout, re.MULTILINE)
build_seconds = float(reported.group(1)) if reported else None
print(json.dumps({"seconds": seconds, "peak_rss_kib": peak, "build_seconds": build_seconds}))
