"""Time from a fresh interpreter to the first answer: importing an app and serving one URL.

Usage: python cold_start.py built DIR URL  (imports DIR/server.py, as gunicorn does)
       python cold_start.py plain URL       (imports the benchmark site and creates the app)
"""

import sys
import time

start = time.perf_counter()
if sys.argv[1] == "built":
    sys.path.insert(0, sys.argv[2])
    from server import app
else:
    import benchsite

    app = benchsite.create_app()
from werkzeug.test import Client  # noqa: E402

reply = Client(app).get(sys.argv[-1])
assert reply.status_code == 200, reply.status
print(time.perf_counter() - start)
