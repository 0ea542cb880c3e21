#!/usr/bin/env python
"""Public-page throughput: the home page (and a booths page) versus a trivial view, over HTTP.

Run from the project root:  .venv/bin/python bench/home.py   (see bench/README.md)

1. Builds the database ``seminar_bench_home`` with production settings, as bench/apply.py does
   (bench/common.py: collectstatic, migrate, seed_demo --no-admin), and starts gunicorn the same
   way (gthread, 2 workers x 4 threads, ./gunicorn.conf.py, no worker recycling).
2. Checks each page once: 200, the right language, no Set-Cookie, no CSRF token, and the same
   bytes twice in a row for a visitor without cookies (a cached page that leaked one visitor's
   data into another's would differ or carry a cookie).
3. Drives 20 concurrent clients, one phase per page, each a warm-up then a measured window:
   ``GET /healthz``; ``GET /`` (Japanese) and ``GET /en/`` (English), the current edition's home;
   ``GET /?from=bench``, which the cache does not serve (the cost of a render);
   ``GET /<code>/`` when the demo edition is not the current one; ``GET /<code>/booths/<session>/``
   in both languages; ``GET /healthz`` again. The baseline is the mean of the two healthz phases,
   so a neighbour's load that comes and goes during the run shifts both sides.
   The site picks the language from the path (Japanese at /, English under /en/; see
   seminar_site/urls.py): clients also send the matching Accept-Language, as phones do.
4. Prints rps, p50, p95, server CPU per request (gunicorn + PostgreSQL) and the ratios, then the
   target: home page rps >= 60 % of /healthz rps, in both languages.
   Exit 1 on any wrong answer (status, language, cookie) or setup failure; 0 otherwise, even when
   the target is missed.
"""

from __future__ import annotations

import argparse
import functools
import multiprocessing as mp
import os
import re
import sys
from concurrent.futures import ProcessPoolExecutor
from typing import Any

import httpx
from common import (
    FlowError,
    GunicornRun,
    ServerCpu,
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

DB_NAME = "seminar_bench_home"
VAR_DIR = "/tmp/seminar_bench_home_var"
GUNICORN_LOG = "/tmp/seminar_bench_home_gunicorn.log"
DEMO = "demo"
HARD_LIMIT_SECONDS = 170  # the whole run stays under 3 minutes, whatever happens
TARGET_RATIO = 0.60
BOOTHS_RE = re.compile(r'href="/([\w-]+)/booths/([\w-]+)/"')


# ---------------------------------------------------------------------------------------------
# Client side (runs in client processes; must stay importable without side effects)
# ---------------------------------------------------------------------------------------------


def get_page(client: httpx.Client, base: str, n: int, *, path: str, lang: str) -> list[float]:
    """One visitor without cookies: the page in its language, and nothing personal in it."""
    r = client.get(
        base + path,
        headers={"X-Forwarded-Proto": "https", "Accept-Language": f"{lang},en;q=0.5"},
    )
    if r.status_code != 200:
        raise FlowError(f"GET {path}: HTTP {r.status_code}")
    if f'<html lang="{lang}">'.encode() not in r.content:
        raise FlowError(f"GET {path}: not in {lang}")
    if "set-cookie" in r.headers:
        raise FlowError(f"GET {path}: sets a cookie ({r.headers['set-cookie'][:40]}…)")
    return []


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


def preflight(base: str, pages: list[tuple[str, str, str]]) -> list[str]:
    """Each page once more before the load: the checks a cache bug would fail."""
    problems = []
    with httpx.Client(timeout=10.0, trust_env=False) as client:
        for _label, path, lang in pages:
            bodies = []
            for _ in range(2):
                try:
                    get_page(client, base, 0, path=path, lang=lang)
                except FlowError as e:
                    problems.append(str(e))
                client.cookies.clear()
                bodies.append(
                    client.get(base + path, headers={"X-Forwarded-Proto": "https"}).content
                )
            if b"csrfmiddlewaretoken" in bodies[0]:
                problems.append(f"GET {path}: the page holds a CSRF token")
            if bodies[0] != bodies[1]:
                problems.append(f"GET {path}: two cookie-less visitors got different pages")
    return problems


def discover(base: str) -> tuple[str, str]:
    """The current edition's code and its first session, from the home page's booth links."""
    r = httpx.get(f"{base}/", headers={"X-Forwarded-Proto": "https"}, trust_env=False)
    found = BOOTHS_RE.search(r.text)
    if r.status_code != 200 or not found:
        raise RuntimeError(f"GET /: HTTP {r.status_code}, no booths link to find the edition")
    return found.group(1), found.group(2)


def report(
    phases: dict[str, dict[str, Any]], pages: list[tuple[str, str, str]], args: argparse.Namespace
) -> None:
    first, last = phases["healthz"], phases["healthz (again)"]
    base_rate = (first["rate"] + last["rate"]) / 2
    base_cpu = (first["cpu_ms"] + last["cpu_ms"]) / 2
    print()
    print(
        f"Results: {args.clients} concurrent clients, {args.duration:g} s measured after "
        f"{args.warmup:g} s warm-up per page; {os.cpu_count()} CPUs shared by the server, "
        "PostgreSQL, the load generator and whatever else runs; load average "
        + " ".join(f"{v:.1f}" for v in os.getloadavg())
    )
    rows = []
    for label, phase in phases.items():
        rows.append(
            (
                label,
                f"{phase['rate']:.0f}",
                f"{phase['p50']:.1f}",
                f"{phase['p95']:.1f}",
                f"{phase['cpu_ms']:.2f}",
                f"{phase['rate'] / base_rate:.2f}" if base_rate else "nan",
                f"{base_cpu / phase['cpu_ms']:.2f}" if phase["cpu_ms"] else "nan",
            )
        )
    print_table(
        ("", "req/s", "p50 ms", "p95 ms", "CPU ms/req", "÷ healthz", "CPU ratio"),
        rows,
        (34, 7, 8, 8, 11, 10, 10),
    )
    print(
        "÷ healthz: rps over the mean rps of the two healthz phases. CPU ratio: healthz's server "
        "CPU per request over the page's (the ratio a server with the CPUs to itself would "
        "approach)."
    )
    print(
        "other processes on the machine used "
        + " / ".join(f"{p['other_cpu']:.2f}" for p in phases.values())
        + " cores during the measured windows"
    )
    home = [label for label, path, _ in pages if path in ("/", "/en/")]
    worst = min(phases[label]["rate"] for label in home) / base_rate if base_rate else 0.0
    print(
        f"home page rps ÷ trivial rps = {worst:.2f} in the slower language "
        f"(target ≥ {TARGET_RATIO:.2f}): {'MET' if worst >= TARGET_RATIO else 'MISSED'}"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    load_arguments(parser, duration=10.0, warmup=3.0)
    args = parser.parse_args()
    if 8 * (1 + args.warmup + args.duration) > 125:
        parser.error("warm-up + duration must stay under 15 s per phase (3-minute budget)")

    with GunicornRun(HARD_LIMIT_SECONDS, GUNICORN_LOG) as run:
        env, _use_redis = production_env(DB_NAME, VAR_DIR)
        if not args.skip_setup:
            prepare_database(env, DB_NAME)
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = run.server = start_gunicorn(env, port, args, log_path=GUNICORN_LOG)
        wait_healthy(base, server, log_path=GUNICORN_LOG)
        log(f"gunicorn ready at {base}")
        code, session = discover(base)
        pages = [
            ("GET / (ja)", "/", "ja"),
            ("GET /en/ (en)", "/en/", "en"),
            # A query string (an ad's or a social network's tracking id) bypasses the cache:
            # the cost of rendering the page, measured in the same run.
            ("GET /?from=bench (ja, not cached)", "/?from=bench", "ja"),
        ]
        if code != DEMO:
            pages += [(f"GET /{DEMO}/ (ja)", f"/{DEMO}/", "ja")]
        else:
            log(f"the current edition is {DEMO}: /{DEMO}/ is the same page as /, not measured")
        booths = f"/{code}/booths/{session}/"
        pages += [
            (f"GET {booths} (ja)", booths, "ja"),
            (f"GET /en{booths} (en)", f"/en{booths}", "en"),
        ]
        run.problems += preflight(base, pages)
        phases: dict[str, dict[str, Any]] = {}
        server_cpu = ServerCpu(server.pid, DB_NAME)
        try:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(args.client_procs, mp_context=ctx) as pool:
                phases["healthz"] = run_phase("healthz", healthz, base, args, pool, server_cpu)
                for label, path, lang in pages:
                    work = functools.partial(get_page, path=path, lang=lang)
                    phases[label] = run_phase(label, work, base, args, pool, server_cpu)
                phases["healthz (again)"] = run_phase(
                    "healthz (again)", healthz, base, args, pool, server_cpu
                )
        finally:
            server_cpu.close()
        stop_gunicorn(server)
        run.problems += phase_errors(phases)
        report(phases, pages, args)
    return run.status


if __name__ == "__main__":
    sys.exit(main())
