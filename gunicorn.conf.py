"""Gunicorn settings for the web container (docker-compose.yml) and the benchmarks."""

import os

bind = os.environ.get("GUNICORN_BIND", "0.0.0.0:8000")
workers = int(os.environ.get("GUNICORN_WORKERS", "3"))
threads = int(os.environ.get("GUNICORN_THREADS", "4"))
worker_class = "gthread"
timeout = 30
graceful_timeout = 30
keepalive = 5
# Recycle workers now and then so that a slow leak can never take the site down.
max_requests = 2000
max_requests_jitter = 200
accesslog = "-"
# The access log never holds a private My application link or a staff search
# (seminar_site/logs.py).
logger_class = "seminar_site.logs.GunicornLogger"
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")
