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
# worker per core with 8 threads each. Threads, not processes, are what let concurrent
# single-event requests share one database commit (ingest/groupcommit.py groups the requests
# of one process): with 2 threads no group ever forms. While one thread of a worker waits on
# PostgreSQL the others keep its core busy, so the extra worker per core is no longer needed,
# and fewer workers means bigger groups. bench/ingest.py's sweep on 2 cores (same run, shared
# machine): single events 2w x 8t 850-910 req/s, 2w x 16t 780-810, 3w x 8t 690-720, 3w x 2t
# 480-580; batches of 100 at 8 connections about equal (20-22k events/s) for all of them.
workers = int(os.environ.get("WEB_CONCURRENCY") or os.cpu_count() or 1)
worker_class = "gthread"
threads = int(os.environ.get("GUNICORN_THREADS") or 8)
# Longer than a client's usual pause between batches (the Python client flushes every 1 s).
keepalive = 5
