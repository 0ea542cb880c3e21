"""PostgreSQL restarted under load: the site answers again within seconds, with the same gunicorn
master and workers. Persistent connections (CONN_MAX_AGE) broken by the restart are dropped by
CONN_HEALTH_CHECKS instead of failing every request until the workers are restarted.

This restarts the machine's real cluster, so other tests running at the same time lose their
connections for a few seconds.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
import time
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import psycopg
import pytest
from django.db import connections

from registration.models import Edition

from . import procs

# Once PostgreSQL accepts connections again, every request must succeed within this.
RECOVERY_SECONDS = 15
# How long the recovered site is watched.
WATCH_SECONDS = 5
CLUSTERS = Path("/etc/postgresql")
APP_TABLE = re.compile(r'FROM "(registration|childcare)_')
ACCESS_LINE = re.compile(r"^<(\d+)> (\d{3}) GET (\S+) ")

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]


@dataclass(frozen=True)
class Hit:
    started: float
    ended: float
    outcome: int | str  # the status, or the name of the transport error


def pg_ctlcluster(action: str) -> None:
    [version] = os.listdir(CLUSTERS)  # one cluster on this machine, as the README sets it up
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", action],
        check=True,
        capture_output=True,
        timeout=120,
    )


def accepting(url: str) -> bool:
    with psycopg.connect(url, connect_timeout=2) as conn:
        return conn.execute("SELECT 1").fetchone() == (1,)


def app_backends(url: str) -> dict[int, str]:
    """The other sessions on the test database (the gunicorn workers' persistent connections),
    each with the last statement it ran."""
    with psycopg.connect(url, connect_timeout=2) as conn:
        rows = conn.execute(
            "SELECT pid, query FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
        ).fetchall()
    return dict(rows)


def reads_the_app_tables(backends: dict[int, str]) -> bool:
    return any(APP_TABLE.search(query) for query in backends.values())


def ensure_running(url: str) -> None:
    """Leave PostgreSQL running whatever happened: the rest of the suite needs it."""
    try:
        procs.wait_for(lambda: accepting(url), 30, "PostgreSQL")
    except AssertionError:
        pg_ctlcluster("start")
        procs.wait_for(lambda: accepting(url), 60, "PostgreSQL after start")


def load(url: str, path: str, hits: list[Hit], stopping: threading.Event) -> None:
    """A parent's phone reloading a page: a new connection for each request, so that the kernel
    spreads them over both workers."""
    with httpx.Client(base_url=url, timeout=10, headers={"Connection": "close"}) as client:
        while not stopping.is_set():
            started = time.monotonic()
            outcome: int | str
            try:
                outcome = client.get(path).status_code
            except httpx.TransportError as e:
                outcome = type(e).__name__
            hits.append(Hit(started, time.monotonic(), outcome))
            time.sleep(0.1)


@pytest.fixture
def quiet_httpx() -> Iterator[None]:
    """httpx logs every request at INFO: a thousand lines of load."""
    logger = logging.getLogger("httpx")
    level = logger.level
    logger.setLevel(logging.WARNING)
    yield
    logger.setLevel(level)


@pytest.mark.usefixtures("quiet_httpx")
def test_the_site_recovers_from_a_postgres_restart_without_restarting_gunicorn(
    tmp_path: Path, edition: Edition
) -> None:
    url = procs.db_url()
    # The application form: its edition and sessions are read from the database on each request
    # (the edition's own page is served from registration.page_cache).
    page = f"/{edition.code}/apply/"
    env = procs.web_env(
        tmp_path,
        # Which worker served each request (on top of gunicorn.conf.py).
        GUNICORN_CMD_ARGS="--access-logformat '%(p)s %(s)s %(r)s'",
    )
    hits: list[Hit] = []
    probes: list[Hit] = []
    stopping = threading.Event()
    with procs.gunicorn(tmp_path, env) as web:
        master = web["process"].pid
        workers = procs.children(master)
        threads = [
            *(
                threading.Thread(target=load, args=(web["url"], page, hits, stopping))
                for _ in range(4)
            ),
            threading.Thread(target=load, args=(web["url"], "/healthz", probes, stopping)),
        ]
        for thread in threads:
            thread.start()
        try:
            procs.wait_for(lambda: sum(h.outcome == 200 for h in hits) >= 20, 60, "warm-up")
            # The page is read from the database, over connections the workers keep open.
            before_restart = app_backends(url)
            assert len(before_restart) >= 2, before_restart
            assert reads_the_app_tables(before_restart), f"{page} is not read from the database"
            restarting = time.monotonic()
            try:
                pg_ctlcluster("restart")
                procs.wait_for(lambda: accepting(url), 60, "PostgreSQL to accept connections")
                back = time.monotonic()
            finally:
                connections.close_all()  # this process's connection died with the restart too
                ensure_running(url)
            recovered = back + RECOVERY_SECONDS
            time.sleep(max(0.0, recovered - time.monotonic()))
            log_offset = web["log"].stat().st_size
            time.sleep(WATCH_SECONDS)
        finally:
            stopping.set()
            for thread in threads:
                thread.join(30)
        alive = web["process"].poll() is None and procs.children(master) == workers
        after_restart = app_backends(url)
        served_after = Counter(
            (int(m[1]), int(m[2]))
            for line in web["log"].read_bytes()[log_offset:].decode(errors="replace").splitlines()
            if (m := ACCESS_LINE.match(line)) and m[3] == page
        )

    before = [h for h in hits if h.ended < restarting]
    after = [h for h in hits if h.started > recovered]
    during = [h for h in hits if h.ended >= restarting and h.started <= recovered]
    errors = [h for h in during if h.outcome != 200]
    slowest = max(during, key=lambda h: h.ended - h.started)
    print(
        f"PostgreSQL accepted connections again {back - restarting:.1f} s after the restart "
        f"began. Meanwhile {len(errors)} of {len(during)} page requests failed "
        f"({dict(Counter(h.outcome for h in errors))}"
        + (
            f", from {min(h.started for h in errors) - restarting:+.1f} s to "
            f"{max(h.ended for h in errors) - restarting:+.1f} s"
            if errors
            else ""
        )
        + f"); the slowest took {slowest.ended - slowest.started:.1f} s. /healthz meanwhile: "
        f"{dict(Counter(h.outcome for h in probes if h.ended >= restarting))}. Page requests "
        f"per (worker, status) after recovery: {dict(served_after)}"
    )
    assert alive, "gunicorn's master or workers were replaced"
    assert {h.outcome for h in before} == {200} and len(before) >= 20
    assert {h.outcome for h in after} == {200} and len(after) >= 20
    assert all(isinstance(h.outcome, str) or h.outcome >= 500 for h in errors), errors
    # Both workers are back, each over connections opened after the restart.
    assert {pid for pid, status in served_after if status == 200} == workers
    assert not [key for key in served_after if key[1] != 200]
    assert len(after_restart) >= 2 and reads_the_app_tables(after_restart), after_restart
    assert not set(after_restart) & set(before_restart)
