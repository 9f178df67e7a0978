"""gunicorn's settings for Costboard's web process: production, `make demo` and the benchmarks.

    gunicorn -c deploy/gunicorn.conf.py costboard.wsgi

`bench/ingest.py` measures ingest with this file (its sweep varies only workers and threads),
so production runs what was measured. Command-line options override it; the address is left
to `--bind` (gunicorn's default is 127.0.0.1:8000).

Threaded workers with keep-alive: services post usage all the time from a few long-lived
connections (the Python client, OTLP exporters), and gunicorn's sync workers close every
connection after one answer, so each request also paid a TCP handshake and teardown on both
sides. Threads also let a worker parse the next request while another waits on PostgreSQL.
"""

import os

# WEB_CONCURRENCY is gunicorn's own variable (docker-compose.yml sets it). By default one
# worker more than cores, so a core is busy while a worker waits on the database: on 2 cores
# 3 workers x 2 threads served the most events (bench/ingest.py's sweep).
workers = int(os.environ.get("WEB_CONCURRENCY") or (os.cpu_count() or 1) + 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 2)
# Longer than a client's usual pause between batches (the Python client flushes every 1 s).
keepalive = 5
