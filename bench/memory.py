#!/usr/bin/env python
"""Memory of a web worker: after boot, after warming up every public page, and along N requests.

Run from the project root:  .venv/bin/python bench/memory.py   (see bench/README.md)

1. Builds the database ``seminar_bench_memory`` with production settings and starts gunicorn as
   bench/apply.py does (bench/common.py: gthread, 2 workers x 4 threads, ./gunicorn.conf.py, no
   worker recycling, so that one worker's memory is followed over the whole run). The access
   log records each request's worker pid.
2. "boot": once every worker is idle (its CPU time and RSS unchanged for a second) and before
   any request, reads each worker's RSS, PSS and USS (private pages) from
   /proc/<pid>/smaps_rollup. This is the baseline: Django and the project imported, nothing
   served yet.
3. "warm": after every public page, in both languages, and the admin login page, 5 times per
   worker, and two whole applications per worker.
4. Then N (default 6,000) more requests from 4 client threads, a fixed mix of the home page,
   edition pages, booths pages, the application form, whole applications (4 requests each:
   form, POST, confirm, POST) and the admin login page, with a reading every N/6 requests.
5. Prints a table per worker and the growth per 1,000 requests that worker served: after
   warm-up, and in the steady state (from the first reading at which the worker had served
   1,000 requests to the end), then the targets. Exit 1 on any unexpected answer or setup
   failure; 0 otherwise, even when a target is missed.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import secrets
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
from apply import submission
from common import (
    FlowError,
    GunicornRun,
    count_rows,
    empty_redis_queues,
    free_port,
    gunicorn_pids,
    log,
    prepare_database,
    print_table,
    proc_cpu,
    production_env,
    start_gunicorn,
    stop_gunicorn,
    wait_healthy,
)

DB_NAME = "seminar_bench_memory"
VAR_DIR = "/tmp/seminar_bench_memory_var"
GUNICORN_LOG = "/tmp/seminar_bench_memory_gunicorn.log"
HARD_LIMIT_SECONDS = 270  # the whole run stays under 5 minutes, whatever happens
CLIENT_THREADS = 4

TARGET_RSS_MIB = 150.0  # per worker, at the end of the run
TARGET_GROWTH_MIB = 2.0  # per 1,000 requests served by a worker, in the steady state
STEADY_AFTER = 1000  # requests a worker has served before its growth counts as steady

PAGES = [  # (path, expected status); English pages under /en/
    "/",
    "/demo/",
    "/2026/",
    "/demo/booths/tama/",
    "/demo/booths/center/",
    "/demo/apply/",
    "/privacy/",
    "/how-the-lottery-works/",
    "/my/",
    "/lottery/demo/",
]
PUBLIC = [*PAGES, *(f"/en{p}" for p in PAGES)]
# One round of the mix: 12 GETs and one whole application (4 requests).
MIX: list[str] = [
    "/",
    "/en/",
    "/demo/apply/",
    "/demo/booths/tama/",
    "/en/demo/booths/center/",
    "/admin/login/",
    "/",
    "/demo/",
    "/en/demo/apply/",
    "/2026/",
    "/",
    "/lottery/demo/",
    "APPLY",
]

HEADERS = {"X-Forwarded-Proto": "https"}
SMAPS_FIELDS = re.compile(r"^(Rss|Pss|Private_Clean|Private_Dirty):\s+(\d+) kB", re.M)


# ---------------------------------------------------------------------------------------------
# Memory readings
# ---------------------------------------------------------------------------------------------


def memory(pid: int) -> dict[str, float]:
    """RSS, PSS and USS (private clean + dirty) of one process, in MiB."""
    text = Path(f"/proc/{pid}/smaps_rollup").read_text()
    kb = {name: int(value) for name, value in SMAPS_FIELDS.findall(text)}
    return {
        "rss": kb["Rss"] / 1024,
        "pss": kb["Pss"] / 1024,
        "uss": (kb["Private_Clean"] + kb["Private_Dirty"]) / 1024,
    }


def workers(master: int) -> list[int]:
    return gunicorn_pids(master)[1:]


def wait_idle(master: int, count: int, timeout: float = 60) -> list[int]:
    """The workers' pids once ``count`` of them used no CPU and grew no page for a second."""
    deadline = time.monotonic() + timeout
    last: dict[int, tuple[float | None, float]] = {}
    still = 0
    while time.monotonic() < deadline:
        time.sleep(0.25)
        pids = workers(master)
        now = {p: (proc_cpu(p), memory(p)["rss"]) for p in pids}
        still = still + 1 if len(pids) == count and now == last else 0
        if still >= 4:
            return pids
        last = now
    raise RuntimeError(f"the {count} gunicorn workers did not settle within {timeout:.0f} s")


def served(log_path: str) -> Counter[int]:
    """Requests served so far by each worker, from the access log (``%(p)s`` is ``<pid>``)."""
    return Counter(int(pid) for pid in re.findall(r"^<(\d+)> ", Path(log_path).read_text(), re.M))


# ---------------------------------------------------------------------------------------------
# Requests
# ---------------------------------------------------------------------------------------------


def get(client: httpx.Client, base: str, path: str) -> int:
    r = client.get(base + path, headers=HEADERS)
    if r.status_code != 200:
        raise FlowError(f"GET {path}: HTTP {r.status_code}")
    return 1


def run_mix(base: str, actions: list[str], tag: str, start: int) -> int:
    """Run ``actions`` over CLIENT_THREADS clients; return the number of requests sent.

    Raises FlowError (or httpx.HTTPError) on the first wrong answer."""
    local = threading.local()

    def one(i: int, action: str) -> int:
        if not hasattr(local, "client"):
            local.client = httpx.Client(timeout=20.0, trust_env=False, follow_redirects=False)
        client: httpx.Client = local.client
        client.cookies.clear()
        if action == "APPLY":
            submission(client, base, start + i, tag)
            return 4
        return get(client, base, action)

    with ThreadPoolExecutor(CLIENT_THREADS) as pool:
        return sum(pool.map(one, range(len(actions)), actions))


def mix_actions(requests: int) -> list[str]:
    """The first actions of the repeated MIX that add up to ``requests`` requests."""
    actions: list[str] = []
    total = 0
    for action in itertools.cycle(MIX):
        if total >= requests:
            return actions
        actions.append(action)
        total += 4 if action == "APPLY" else 1
    raise AssertionError("unreachable")


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


Reading = tuple[str, dict[int, dict[str, float]], Counter[int]]  # label, pid → MiB, served


def report(readings: list[Reading], pids: list[int], master_mib: float) -> None:
    print()
    print(
        f"Results: gunicorn gthread, {len(pids)} workers; MiB from /proc/<pid>/smaps_rollup "
        "(USS: private pages; PSS: private plus a share of the pages shared with the master and "
        "the other workers); load average " + " ".join(f"{v:.1f}" for v in os.getloadavg())
    )
    rows = []
    for pid in pids:
        for label, mem, count in readings:
            m = mem[pid]
            rows.append(
                (
                    f"worker {pid}: {label}",
                    str(count[pid]),
                    f"{m['rss']:.1f}",
                    f"{m['pss']:.1f}",
                    f"{m['uss']:.1f}",
                )
            )
    print_table(("", "served", "RSS", "PSS", "USS"), rows, (34, 8, 8, 8, 8))
    print(f"gunicorn master RSS: {master_mib:.1f} MiB")
    print()
    worst_rss = max(readings[-1][1][pid]["rss"] for pid in pids)
    growths = []
    for pid in pids:
        boot, warm, end = readings[0][1][pid], readings[1], readings[-1]
        line = (
            f"worker {pid}: RSS +{end[1][pid]['rss'] - boot['rss']:.1f} MiB since boot, "
            f"{per_thousand(warm, end, pid):+.2f} MiB per 1,000 requests after warm-up"
        )
        # Steady state: from the first reading at which this worker had served STEADY_AFTER
        # requests (gunicorn spreads requests unevenly, and a worker's first few hundred
        # requests still fill caches), if it served STEADY_AFTER more after that.
        start = next((r for r in readings if r[2][pid] >= STEADY_AFTER), None)
        if start and end[2][pid] - start[2][pid] >= STEADY_AFTER:
            growths.append(per_thousand(start, end, pid))
            line += (
                f", {growths[-1]:+.2f} MiB per 1,000 over its last "
                f"{end[2][pid] - start[2][pid]} requests"
            )
        else:
            line += "; too few requests for a steady-state figure"
        print(line)
    print(
        f"largest worker RSS = {worst_rss:.1f} MiB (target < {TARGET_RSS_MIB:.0f} MiB): "
        f"{'MET' if worst_rss < TARGET_RSS_MIB else 'MISSED'}"
    )
    if growths:
        worst = max(growths)
        print(
            f"largest steady-state growth = {worst:+.2f} MiB per 1,000 requests "
            f"(target < {TARGET_GROWTH_MIB:.0f} MiB): "
            f"{'MET' if worst < TARGET_GROWTH_MIB else 'MISSED'}"
        )
    else:
        print("steady-state growth: no worker served enough requests; raise --requests")


def per_thousand(a: Reading, b: Reading, pid: int) -> float:
    requests = b[2][pid] - a[2][pid]
    return (b[1][pid]["rss"] - a[1][pid]["rss"]) * 1000 / requests if requests else 0.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--requests", type=int, default=6000, help="mixed requests after warm-up")
    parser.add_argument("--readings", type=int, default=6, help="memory readings along them")
    parser.add_argument(
        "--preload", action="store_true", help="gunicorn --preload: workers share the imports"
    )
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--skip-setup", action="store_true", help="reuse the database as it is")
    args = parser.parse_args()
    args.worker_class = "gthread"
    tag = secrets.token_hex(3) + "-"

    with GunicornRun(HARD_LIMIT_SECONDS, GUNICORN_LOG) as run:
        env, use_redis = production_env(DB_NAME, VAR_DIR)
        if not args.skip_setup:
            prepare_database(env, DB_NAME)
        before = count_rows(DB_NAME, ["registration_application"])
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = run.server = start_gunicorn(
            env,
            port,
            args,
            extra=[
                "--access-logformat",
                '%(p)s %(s)s "%(r)s"',
                *(["--preload"] if args.preload else []),
            ],
            log_path=GUNICORN_LOG,
        )
        pids = wait_idle(server.pid, args.workers)
        readings: list[Reading] = []

        def read(label: str) -> None:
            time.sleep(0.5)  # let the access log catch up
            readings.append((label, {p: memory(p) for p in pids}, served(GUNICORN_LOG)))
            log(
                f"{label}: RSS "
                + ", ".join(f"{p} {readings[-1][1][p]['rss']:.1f} MiB" for p in pids)
            )

        read("boot")
        wait_healthy(base, server, log_path=GUNICORN_LOG)
        log(f"gunicorn ready at {base}")
        # Each page a few times, so that every worker (and thread) has rendered it.
        warm_up = [*PUBLIC, "/admin/login/"] * 5 * args.workers
        sent = run_mix(base, warm_up, tag, 0)
        sent += run_mix(base, ["APPLY"] * 2 * args.workers, tag, 0)
        submitted = 2 * args.workers
        read("warm")
        step = args.requests // args.readings
        done = 0
        for k in range(1, args.readings + 1):
            actions = mix_actions(step if k < args.readings else args.requests - done)
            submitted += actions.count("APPLY")
            started = time.monotonic()
            n = run_mix(base, actions, tag, 10_000 * k)
            done += n
            sent += n
            log(f"{n} mixed requests in {time.monotonic() - started:.1f} s")
            read(f"+{done} requests")
        if set(workers(server.pid)) != set(pids):
            raise RuntimeError("a worker was replaced during the run: see " + GUNICORN_LOG)
        master_mib = memory(server.pid)["rss"]
        stop_gunicorn(server)

        after = count_rows(DB_NAME, ["registration_application"])
        made = after["registration_application"] - before["registration_application"]
        print(
            f"\nVerification: {sent} requests sent, {submitted} applications submitted, "
            f"{made} created"
        )
        total_served = sum(readings[-1][2].values())
        if made != submitted:
            run.problems.append(f"{made} applications created for {submitted} submissions")
        if use_redis:
            empty_redis_queues()  # the receipt e-mails' tasks: no worker will ever run them
        if total_served < sent:
            run.problems.append(f"the access log shows {total_served} requests for {sent} sent")
        report(readings, pids, master_mib)
    return run.status


if __name__ == "__main__":
    sys.exit(main())
