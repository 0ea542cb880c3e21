"""Where a submission's server time goes, without HTTP: run after bench/apply.py.

    .venv/bin/python bench/profile_steps.py

Uses the database bench/apply.py left behind (seminar_bench) with the same production settings,
drives N submissions through Django's test client and prints the median CPU time of each of the
four requests, then the rendering time of each field of the application form (crispy-forms).
It adds applications to seminar_bench; the next bench/apply.py run recreates it anyway.
"""

from __future__ import annotations

import os
import secrets
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
os.environ.update(
    DJANGO_SETTINGS_MODULE="seminar_site.settings",
    DATABASE_URL="postgres://postgres@127.0.0.1:5432/seminar_bench",
    DJANGO_DEBUG="false",
    SECRET_KEY=secrets.token_urlsafe(50),
    ALLOWED_HOSTS="testserver",
    SECURE_SSL_REDIRECT="false",
    CELERY_TASK_ALWAYS_EAGER="false",
    VAR_DIR="/tmp/seminar_bench_var",
    LOG_LEVEL="WARNING",
)
os.environ.setdefault("REDIS_URL", "redis://127.0.0.1:6379/15")

import django  # noqa: E402

django.setup()

from apply import CSRF_RE, OPTION_RE, SELECT_RE, _form, empty_redis_queues  # noqa: E402
from django.template import Context, Template  # noqa: E402
from django.test import Client  # noqa: E402
from django.utils import translation  # noqa: E402

from registration.forms import ApplicationFormGroup  # noqa: E402
from registration.models import Edition  # noqa: E402

N = int(sys.argv[1]) if len(sys.argv) > 1 else 30


def steps() -> None:
    client = Client(
        HTTP_X_FORWARDED_PROTO="https",
        HTTP_ORIGIN="https://testserver",
        HTTP_REFERER="https://testserver/demo/apply/",
    )
    cpu: dict[str, list[float]] = defaultdict(list)

    def timed(name: str, call):  # type: ignore[no-untyped-def]
        t = time.process_time()
        response = call()
        cpu[name].append((time.process_time() - t) * 1000)
        return response

    base = 70_000_000 + secrets.randbelow(90) * 100_000
    for i in range(N):
        client.cookies.clear()
        r = timed("1 GET  /demo/apply/", lambda: client.get("/demo/apply/"))
        page = r.content.decode()
        token = CSRF_RE.search(page).group(1)  # type: ignore[union-attr]
        options = OPTION_RE.findall(SELECT_RE.search(page).group(0))  # type: ignore[union-attr]
        data = _form(token, options, base + i)
        r = timed("2 POST /demo/apply/", lambda: client.post("/demo/apply/", data))  # noqa: B023
        assert r.status_code == 302, r.status_code
        timed("3 GET  /demo/apply/confirm/", lambda: client.get("/demo/apply/confirm/"))
        r = timed(
            "4 POST /demo/apply/confirm/",
            lambda: client.post("/demo/apply/confirm/", {"csrfmiddlewaretoken": token}),  # noqa: B023
        )
        assert r.status_code == 302, r.status_code
        timed("GET /healthz", lambda: client.get("/healthz"))
    print(f"CPU per request, median of {N - 5} (the first 5 are warm-up):")
    for name, values in cpu.items():
        print(f"  {name:30} {statistics.median(values[5:]):7.1f} ms")


def fields() -> None:
    translation.activate("ja")
    group = ApplicationFormGroup(edition=Edition.objects.get(code="demo"))
    one = Template("{% load crispy_forms_tags %}{{ f|as_crispy_field }}")
    rows = []
    for name in group.form.fields:
        context = Context({"f": group.form[name]})
        one.render(context)
        t = time.process_time()
        for _ in range(5):
            html = one.render(context)
        rows.append(((time.process_time() - t) / 5 * 1000, name, len(html)))
    kids = Template("{% load crispy_forms_tags %}{% for c in ch %}{{ c|crispy }}{% endfor %}")
    t = time.process_time()
    html = kids.render(Context({"ch": group.children}))
    rows.append(((time.process_time() - t) * 1000, "children formset (3 rows)", len(html)))
    print("Rendering the unbound application form, per field (CPU ms, HTML bytes):")
    for ms, name, size in sorted(rows, reverse=True):
        print(f"  {name:30} {ms:7.1f} ms {size:7d} B")
    print(f"  {'total':30} {sum(r[0] for r in rows):7.1f} ms")


if __name__ == "__main__":
    steps()
    fields()
    if "redis" in os.environ.get("REDIS_URL", ""):
        empty_redis_queues()
