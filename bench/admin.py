"""The applications changelist at 100,000 rows against a trivial admin page, in one run.

    .venv/bin/python bench/admin.py [--count 100000] [--repeat 15]

Builds a fresh PostgreSQL database `seminar_bench_admin` (127.0.0.1:5432, user postgres, trust
auth) with synthetic applications, logs in as a member of the "office" group (production
settings: DJANGO_DEBUG=false), and times Django's test client in-process — so the numbers are
the server's work alone, without HTTP or a load generator. The baseline is the organisation
list (about 60 rows), an admin page that does next to nothing. Prints median and p95 times,
the number of queries of each page, and the ratio. Drops the database at the end.
"""

from __future__ import annotations

import argparse
import os
import secrets
import statistics
import sys
import time
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "seminar_bench_admin"


def admin_db(action: str) -> None:
    with psycopg.connect("postgresql://postgres@127.0.0.1:5432/postgres", autocommit=True) as c:
        c.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        if action == "create":
            c.execute(f'CREATE DATABASE "{DB_NAME}"')


def setup_django() -> None:
    sys.path.insert(0, str(ROOT))
    os.environ.update(
        DJANGO_SETTINGS_MODULE="seminar_site.settings",
        DATABASE_URL=f"postgres://postgres@127.0.0.1:5432/{DB_NAME}",
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="testserver",
        SECURE_SSL_REDIRECT="false",
        VAR_DIR="/tmp/seminar_bench_admin_var",
        LOG_LEVEL="WARNING",
    )
    os.environ.pop("REDIS_URL", None)
    import django

    django.setup()


def timed(client, url: str, repeat: int) -> tuple[list[float], int]:  # type: ignore[no-untyped-def]
    from django.db import connection
    from django.test.utils import CaptureQueriesContext

    for _ in range(2):  # warm-up: templates, caches, PostgreSQL buffers
        assert client.get(url).status_code == 200, url
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = client.get(url)
        times.append(time.perf_counter() - started)
        assert response.status_code == 200, url
    with CaptureQueriesContext(connection) as queries:
        client.get(url)
    return times, len(queries)


def p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=100_000)
    parser.add_argument("--repeat", type=int, default=15)
    args = parser.parse_args()
    admin_db("create")
    try:
        setup_django()
        from django.contrib.auth.models import Group, User
        from django.core.management import call_command
        from django.test import Client

        # Imported once Django is set up for this run's own database.
        from registration.management.commands.generate_applications import generate
        from registration.models import Edition

        print(f"setting up {args.count:,} applications…", flush=True)
        call_command("migrate", verbosity=0)
        call_command("seed_demo", "--no-admin", verbosity=0)
        generate(Edition.objects.get(code="2026"), count=args.count, random_seed=1)
        from django.db import connection

        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
        user = User.objects.create(username="bench-office", is_staff=True)
        user.groups.add(Group.objects.get(name="office"))
        client = Client()
        client.force_login(user)

        # Imported once Django is set up for this run's own database.
        from registration.models import Application

        number = Application.objects.order_by("?").values_list("number", flat=True).first()
        pages = {
            "trivial: organisations (~60 rows)": "/admin/registration/organisation/",
            f"applications ({args.count:,} rows)": "/admin/registration/application/",
            "applications, search by number": f"/admin/registration/application/?q={number}",
            "applications, search by kana": "/admin/registration/application/?q=シケン",
            "applications, filter by session": "/admin/registration/application/?status=active"
            "&childcare=yes",
        }
        rows = []
        for name, url in pages.items():
            times, queries = timed(client, url, args.repeat)
            rows.append((name, statistics.median(times), p95(times), queries))
        base = rows[0][1]
        print(f"\nAdmin changelist bench, PostgreSQL, {args.repeat} requests each (in-process)")
        print(f"{'page':45} {'median':>9} {'p95':>9} {'queries':>8} {'÷ trivial':>10}")
        for name, median, high, queries in rows:
            print(
                f"{name:45} {median * 1000:7.1f}ms {high * 1000:7.1f}ms {queries:8d} "
                f"{median / base:9.1f}×"
            )
        return 0
    finally:
        from django.db import connections

        connections.close_all()
        admin_db("drop")


if __name__ == "__main__":
    sys.exit(main())
