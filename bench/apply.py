#!/usr/bin/env python
"""Application-throughput benchmark: full submissions versus a trivial view, over real HTTP.

Run from the project root:  .venv/bin/python bench/apply.py   (see bench/README.md)

1. Drops and recreates the PostgreSQL database ``seminar_bench``; runs collectstatic, migrate and
   ``seed_demo --no-admin`` against it with production settings (DJANGO_DEBUG=false).
2. Starts gunicorn on a free loopback port and waits for ``GET /healthz``. Default: gthread,
   2 workers x 4 threads on this 2-core machine: one process per core (the app is CPU-bound and
   each process runs Python one thread at a time), threads to overlap PostgreSQL/Redis waits,
   the same worker class and keep-alive as production (gunicorn.conf.py, which gunicorn reads
   from the working directory; the command line overrides bind, workers, threads and
   max-requests). ``--worker-class sync --workers 4`` is the alternative.
3. Drives 20 concurrent clients (threads with one httpx.Client each, spread over client processes so
   that the load generator is not limited by one GIL) for a warm-up then a measured window:
   a. ``GET /healthz``;
   b. whole submissions: GET /demo/apply/ → POST (302 to confirm) → GET confirm → POST
      (302 to done).
4. Checks in PostgreSQL that applications and outbox e-mails match the successful submissions,
   prints the results and the targets. Exit 1 on any error (bad status, count mismatch, setup),
   0 otherwise, even when a target is missed: it is a measurement.

Clients send ``X-Forwarded-Proto: https`` as the TLS-terminating proxy does in production: the
site then treats requests as secure (secure cookies, CSRF origin check) exactly as it will live.
httpx does not send "Secure" cookies over http://, so each flow keeps its own cookies.

The database setup, gunicorn, the load driver and the CPU accounting are in bench/common.py,
shared with bench/home.py and bench/memory.py.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import re
import secrets
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
from common import (
    GUNICORN_LOG,
    REDIS_URL,
    FlowError,
    GunicornRun,
    ServerCpu,
    count_rows,
    empty_redis_queues,
    free_port,
    healthz,
    load_arguments,
    log,
    phase_errors,
    prepare_database,
    print_table,
    production_env,
    run_phase,
    start_gunicorn,
    stop_gunicorn,
    wait_healthy,
)

# profile_steps.py imports the form helpers and empty_redis_queues from here.
__all__ = ["CSRF_RE", "OPTION_RE", "SELECT_RE", "_form", "empty_redis_queues", "submission"]

DB_NAME = "seminar_bench"
VAR_DIR = "/tmp/seminar_bench_var"  # broker files (no Redis), mail files: away from var/
EDITION = "demo"
HARD_LIMIT_SECONDS = 170  # the whole run stays under 3 minutes, whatever happens
TABLES = ("registration_application", "registration_outboxemail")

TARGET_RATIO = 0.20
TARGET_P95_MS = 300.0

# ---------------------------------------------------------------------------------------------
# Client side (runs in client processes; must stay importable without side effects).
# The load driver, gunicorn and CPU accounting are in bench/common.py.
# ---------------------------------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SELECT_RE = re.compile(r'<select name="choice_1".*?</select>', re.S)
OPTION_RE = re.compile(r'<option value="(\d+)"')
KANA_DIGITS = "アイウエオカキクケコ"


def _headers(base: str, cookies: dict[str, str], post: bool = False) -> dict[str, str]:
    origin = base.replace("http://", "https://")
    h = {"X-Forwarded-Proto": "https", "Referer": f"{origin}/{EDITION}/apply/"}
    if post:
        h["Origin"] = origin
    if cookies:
        h["Cookie"] = "; ".join(f"{k}={v}" for k, v in cookies.items())
    return h


def _keep_cookies(response: httpx.Response, cookies: dict[str, str]) -> None:
    for header in response.headers.get_list("set-cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        for key, morsel in jar.items():
            cookies[key] = morsel.value


def _expect(r: httpx.Response, status: int, location: str | None, step: str) -> None:
    if r.status_code != status or (location and r.headers.get("location") != location):
        detail = r.headers.get("location") or ""
        if r.status_code == 200 and "is-invalid" in r.text:
            fields = sorted(set(re.findall(r'name="([\w-]+)"[^>]*is-invalid', r.text)))
            detail = f"form errors on {fields}"
        raise FlowError(f"{step}: HTTP {r.status_code} {detail}".strip())


def _form(token: str, options: list[str], n: int, tag: str = "") -> dict[str, str]:
    digits = str(n)
    phone = 20_000_000 + n  # 090-2000-0000 onwards: valid mobile numbers, one per submission
    data = {
        "csrfmiddlewaretoken": token,
        "choice_1": options[0],
        "choice_2": options[1] if len(options) > 1 else "",
        "choice_3": options[2] if len(options) > 2 else "",
        "family_name": "試験",
        "given_name": f"花子{digits}",  # distinct names: no duplicate flags between bench parents
        "family_name_kana": "シケン",
        "given_name_kana": "ハナコ" + "".join(KANA_DIGITS[int(d)] for d in digits),
        "email": f"bench-{tag}{n}@example.jp",
        "email_confirm": f"bench-{tag}{n}@example.jp",
        "phone": f"090-{phone // 10_000:04d}-{phone % 10_000:04d}",
        "municipality": "hachioji",
        "grades": "e4",
        "adults": "1",
        "children": "0",
        "needs_other": "",
        "questions": "",
        "privacy_consent": "on",
        "child-TOTAL_FORMS": "3",
        "child-INITIAL_FORMS": "0",
        "child-MIN_NUM_FORMS": "0",
        "child-MAX_NUM_FORMS": "3",
    }
    for i in range(3):
        for f in ("name", "name_kana", "date_of_birth", "notes"):
            data[f"child-{i}-{f}"] = ""
    return data


def submission(client: httpx.Client, base: str, n: int, tag: str = "") -> list[float]:
    """One parent's whole application; returns the four request latencies in seconds."""
    cookies: dict[str, str] = {}
    url = f"{base}/{EDITION}/apply/"
    confirm = f"/{EDITION}/apply/confirm/"
    done = f"/{EDITION}/apply/done/"
    lat = []

    t = time.perf_counter()
    r = client.get(url, headers=_headers(base, cookies))
    lat.append(time.perf_counter() - t)
    _expect(r, 200, None, "GET apply")
    _keep_cookies(r, cookies)
    token = CSRF_RE.search(r.text)
    select = SELECT_RE.search(r.text)
    if not token or not select:
        raise FlowError("GET apply: no csrf token or no choice_1 select in the page")
    options = OPTION_RE.findall(select.group(0))
    if not options:
        raise FlowError("GET apply: no options in choice_1")

    t = time.perf_counter()
    r = client.post(
        url, data=_form(token.group(1), options, n, tag), headers=_headers(base, cookies, post=True)
    )
    lat.append(time.perf_counter() - t)
    _expect(r, 302, confirm, "POST apply")
    _keep_cookies(r, cookies)

    t = time.perf_counter()
    r = client.get(base + confirm, headers=_headers(base, cookies))
    lat.append(time.perf_counter() - t)
    _expect(r, 200, None, "GET confirm")
    _keep_cookies(r, cookies)
    token = CSRF_RE.search(r.text) or token

    t = time.perf_counter()
    r = client.post(
        base + confirm,
        data={"csrfmiddlewaretoken": token.group(1)},
        headers=_headers(base, cookies, post=True),
    )
    lat.append(time.perf_counter() - t)
    _expect(r, 302, done, "POST confirm")
    return lat


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


def report(health: dict[str, Any], apply: dict[str, Any], args: argparse.Namespace) -> None:
    ratio = apply["rate"] / health["rate"] if health["rate"] else float("nan")
    ok_ratio = ratio >= TARGET_RATIO
    post_confirm_p95 = apply["steps_p95"][3] if apply["steps_p95"] else float("nan")
    ok_p95 = post_confirm_p95 < TARGET_P95_MS
    labels = (
        "  1 GET  /demo/apply/",
        "  2 POST /demo/apply/",
        "  3 GET  /demo/apply/confirm/",
        "  4 POST /demo/apply/confirm/",
    )
    rows = [
        ("GET /healthz", f"{health['rate']:.1f} req/s", health["p50"], health["p95"]),
        ("submission (4 requests)", f"{apply['rate']:.1f} sub/s", apply["p50"], apply["p95"]),
        *(
            (label, "", p50, p95)
            for label, p50, p95 in zip(
                labels,
                apply["steps_p50"] or [float("nan")] * 4,
                apply["steps_p95"] or [float("nan")] * 4,
                strict=True,
            )
        ),
    ]
    print()
    print(
        f"Results: {args.clients} concurrent clients, {args.duration:g} s measured after "
        f"{args.warmup:g} s warm-up; {os.cpu_count()} CPUs shared by the server, PostgreSQL, "
        "the load generator and whatever else runs"
    )
    if not apply["count"]:
        print("WARNING: no submission completed inside the measured window: lengthen --duration")
    print_table(
        ("", "throughput", "p50 ms", "p95 ms"),
        [(name, rate, f"{p50:.1f}", f"{p95:.1f}") for name, rate, p50, p95 in rows],
        (32, 14, 9, 9),
    )
    print()
    print(
        f"submissions/s ÷ trivial rps = {ratio:.3f}  (target ≥ {TARGET_RATIO:.2f}): "
        f"{'MET' if ok_ratio else 'MISSED'}"
    )
    cpu_ratio = health["cpu_ms"] / apply["cpu_ms"] if apply["cpu_ms"] else float("nan")
    print(
        f"server CPU (gunicorn + PostgreSQL): {health['cpu_ms']:.2f} ms per /healthz, "
        f"{apply['cpu_ms']:.1f} ms per submission → CPU-cost ratio {cpu_ratio:.3f} (the "
        f"throughput ratio a server with the CPUs to itself would approach)"
    )
    print(
        f"other processes on the machine used {health['other_cpu']:.2f} / "
        f"{apply['other_cpu']:.2f} cores during the two measured windows"
    )
    print(
        f"p95 of the final POST (submit) = {post_confirm_p95:.1f} ms "
        f"(target < {TARGET_P95_MS:.0f} ms): {'MET' if ok_p95 else 'MISSED'}; "
        f"whole 4-request flow p95 = {apply['p95']:.1f} ms (shown for reference)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    load_arguments(parser, duration=15.0, warmup=3.0)
    args = parser.parse_args()
    args.tag = secrets.token_hex(3) + "-"  # e-mails stay unique even with --skip-setup
    if 2 * (args.warmup + args.duration) > 120:
        parser.error("warm-up + duration must stay under 60 s per phase (3-minute budget)")

    with GunicornRun(HARD_LIMIT_SECONDS, GUNICORN_LOG) as run:
        env, use_redis = production_env(DB_NAME, VAR_DIR)
        if not args.skip_setup:
            prepare_database(env, DB_NAME)
        before = count_rows(DB_NAME, TABLES)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = run.server = start_gunicorn(env, port, args)
        wait_healthy(base, server)
        log(f"gunicorn ready at {base}")
        server_cpu = ServerCpu(server.pid, DB_NAME)
        try:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(args.client_procs, mp_context=ctx) as pool:
                health = run_phase("healthz", healthz, base, args, pool, server_cpu)
                apply = run_phase(
                    "apply",
                    functools.partial(submission, tag=args.tag),
                    base,
                    args,
                    pool,
                    server_cpu,
                    unit="submission",
                )
        finally:
            server_cpu.close()
        stop_gunicorn(server)
        after = count_rows(DB_NAME, TABLES)

        run.problems += phase_errors({"healthz": health, "apply": apply})
        made = {t: after[t] - before[t] for t in after}
        print(
            f"\nVerification: {apply['ok_total']} successful submissions (warm-up included); "
            f"rows created: {made['registration_application']} applications, "
            f"{made['registration_outboxemail']} outbox e-mails"
        )
        if any(v != apply["ok_total"] for v in made.values()):
            run.problems.append("row counts do not match the successful submissions")
        if use_redis:
            queued = empty_redis_queues()
            print(
                f"Celery tasks published to Redis: {queued} (queues {REDIS_URL} emptied "
                "afterwards: no worker will ever run them)"
            )
        else:
            queue = Path(VAR_DIR) / "broker" / "queue"
            files = len(list(queue.iterdir())) if queue.is_dir() else 0
            print(f"Celery tasks written to the filesystem broker ({queue}): {files}")
        report(health, apply, args)
    return run.status


if __name__ == "__main__":
    sys.exit(main())
