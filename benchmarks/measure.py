"""Run a command and print its wall time and the peak RSS of its largest process, as JSON.

Usage: python measure.py COMMAND [ARG ...]
"""

import json
import resource
import subprocess
import sys
import time

start = time.perf_counter()
completed = subprocess.run(sys.argv[1:], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
seconds = time.perf_counter() - start
if completed.returncode:
    sys.exit(f"{' '.join(sys.argv[1:])} failed:\n{completed.stderr.decode()}")
# Linux: the peak RSS of the largest descendant waited for, in KiB. Forked workers share
# most of their memory with the parent, so the largest process is the honest figure.
peak = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
print(json.dumps({"seconds": seconds, "peak_rss_kib": peak}))
