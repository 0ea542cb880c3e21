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
"""

from __future__ import annotations

import argparse
import multiprocessing as mp
import os
import re
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from concurrent.futures import ProcessPoolExecutor
from http.cookies import SimpleCookie
from pathlib import Path
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # .venv/bin when run as .venv/bin/python
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
DB_NAME = "seminar_bench"
DATABASE_URL = f"postgres://postgres@127.0.0.1:5432/{DB_NAME}"
# A Redis database of its own: the tasks this bench publishes (and deletes at the end) must not
# land in a queue that a developer's worker reads, since their ids refer to the bench database.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
VAR_DIR = "/tmp/seminar_bench_var"  # broker files (no Redis), mail files: away from var/
GUNICORN_LOG = "/tmp/seminar_bench_gunicorn.log"
EDITION = "demo"
HARD_LIMIT_SECONDS = 170  # the whole run stays under 3 minutes, whatever happens

TARGET_RATIO = 0.20
TARGET_P95_MS = 300.0

# ---------------------------------------------------------------------------------------------
# Client side (runs in client processes; must stay importable without side effects)
# ---------------------------------------------------------------------------------------------

CSRF_RE = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')
SELECT_RE = re.compile(r'<select name="choice_1".*?</select>', re.S)
OPTION_RE = re.compile(r'<option value="(\d+)"')
KANA_DIGITS = "アイウエオカキクケコ"


class FlowError(Exception):
    pass


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


def _submission(client: httpx.Client, base: str, n: int, tag: str) -> list[float]:
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


def client_process(
    kind: str, base: str, proc_no: int, threads: int, t_start: float, t_stop: float, tag: str
) -> dict[str, Any]:
    """Run ``threads`` clients from wall time t_start until t_stop; return their records.

    healthz records are (end_time, latency); submission records (end_time, flow, s1, s2, s3, s4).
    """
    records: list[tuple[float, ...]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(thread_no: int) -> None:
        mine: list[tuple[float, ...]] = []
        seq = 0
        with httpx.Client(timeout=10.0, trust_env=False, follow_redirects=False) as client:
            while time.time() < t_stop:
                try:
                    if kind == "healthz":
                        client.cookies.clear()
                        t = time.perf_counter()
                        r = client.get(f"{base}/healthz")
                        latency = time.perf_counter() - t
                        if r.status_code != 200:
                            raise FlowError(f"GET /healthz: HTTP {r.status_code}")
                        mine.append((time.time(), latency))
                    else:
                        # Unique per client and flow: e-mail (plus the run's tag), phone, name.
                        n = (proc_no * 100 + thread_no) * 100_000 + seq
                        seq += 1
                        client.cookies.clear()
                        t = time.perf_counter()
                        steps = _submission(client, base, n, tag)
                        mine.append((time.time(), time.perf_counter() - t, *steps))
                except (FlowError, httpx.HTTPError) as e:
                    with lock:
                        errors.append(f"{type(e).__name__}: {e}")
                    time.sleep(0.05)
        with lock:
            records.extend(mine)

    time.sleep(max(0.0, t_start - time.time()))
    cpu0 = time.process_time()
    pool = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for th in pool:
        th.start()
    for th in pool:
        th.join()
    return {"records": records, "errors": errors, "cpu": time.process_time() - cpu0}


# ---------------------------------------------------------------------------------------------
# Orchestration
# ---------------------------------------------------------------------------------------------


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def redis_answers(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return bool(client.ping())
    except Exception:
        return False


def empty_redis_queues() -> int:
    """Delete the Celery queues (Redis lists) in the bench's Redis database; return their length."""
    import redis

    client = redis.Redis.from_url(REDIS_URL)
    total = 0
    for key in client.scan_iter():
        if client.type(key) == b"list":
            total += int(client.llen(key))  # type: ignore[arg-type]
            client.delete(key)
    return total


def recreate_database() -> None:
    with psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{DB_NAME}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{DB_NAME}"')


def manage(env: dict[str, str], *args: str, timeout: float = 90, quiet: bool = False) -> bool:
    started = time.monotonic()
    proc = subprocess.run(
        [str(BIN / "python"), "manage.py", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if proc.returncode != 0:
        if quiet:
            return False
        sys.stderr.write(proc.stdout[-3000:] + proc.stderr[-3000:])
        raise RuntimeError(f"manage.py {' '.join(args)} failed ({proc.returncode})")
    log(f"manage.py {' '.join(args)}: ok ({time.monotonic() - started:.1f} s)")
    return True


def collectstatic(env: dict[str, str]) -> None:
    """collectstatic with the real settings: whitenoise's manifest storage needs it."""
    manage(env, "collectstatic", "--noinput", "-v0")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(env: dict[str, str], port: int, args: argparse.Namespace) -> subprocess.Popen:
    cmd = [
        str(BIN / "gunicorn"),
        "seminar_site.wsgi:application",
        "--bind",
        f"127.0.0.1:{port}",
        "--worker-class",
        args.worker_class,
        "--workers",
        str(args.workers),
        "--backlog",
        "2048",
        "--timeout",
        "30",
        "--graceful-timeout",
        "5",
        "--worker-tmp-dir",
        "/dev/shm",
        "--log-level",
        "warning",
        # gunicorn.conf.py (read from the working directory) recycles workers every ~2000
        # requests; a worker's boot costs about a second of CPU, which would land on whichever
        # phase happens to be running. Measure the steady state instead.
        "--max-requests",
        "0",
    ]
    if args.worker_class == "gthread":
        cmd += ["--threads", str(args.threads)]
    log("gunicorn: " + " ".join(cmd[1:]))
    logfile = open(GUNICORN_LOG, "w")  # noqa: SIM115 - lives as long as the server
    return subprocess.Popen(
        cmd, cwd=ROOT, env=env, stdout=logfile, stderr=subprocess.STDOUT, start_new_session=True
    )


def stop_gunicorn(proc: subprocess.Popen | None) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(signal.SIGTERM)
    try:
        proc.wait(timeout=10)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)  # our own session: gunicorn and its workers
        proc.wait(timeout=5)


def wait_healthy(base: str, proc: subprocess.Popen, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({proc.returncode}); see {GUNICORN_LOG}")
            try:
                if c.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"/healthz did not answer 200 within {timeout:.0f} s")


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


CLK_TCK = os.sysconf("SC_CLK_TCK")


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def gunicorn_pids(master: int) -> list[int]:
    pids = [master]
    try:
        for task in os.listdir(f"/proc/{master}/task"):
            with open(f"/proc/{master}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return pids


Snapshot = dict[str, dict[int, float]]  # group → pid → CPU seconds


class ServerCpu:
    """CPU used by gunicorn (master and workers) and by the bench database's PostgreSQL backends.

    On a shared machine, wall-clock throughput depends on what else runs; CPU per request does
    much less, so it is reported too.
    """

    def __init__(self, master: int) -> None:
        self.master = master
        self.pg = psycopg.connect(
            f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}", autocommit=True
        )

    def pg_pids(self) -> list[int]:
        rows = self.pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [DB_NAME],
        ).fetchall()
        return [r[0] for r in rows]

    def snapshot(self) -> Snapshot:
        snap: Snapshot = {}
        for group, pids in (("gunicorn", gunicorn_pids(self.master)), ("pg", self.pg_pids())):
            snap[group] = {p: c for p in pids if (c := proc_cpu(p)) is not None}
        return snap

    @staticmethod
    def used(before: Snapshot, after: Snapshot) -> dict[str, float]:
        return {
            g: sum(max(0.0, c - before[g].get(p, 0.0)) for p, c in after[g].items()) for g in after
        }

    def close(self) -> None:
        self.pg.close()


def pct(values: list[float], q: float) -> float:
    """Nearest-rank percentile, in milliseconds."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = max(0, min(len(ordered) - 1, int(round(q / 100 * len(ordered) + 0.5)) - 1))
    return ordered[k] * 1000


def run_phase(
    kind: str,
    base: str,
    args: argparse.Namespace,
    pool: ProcessPoolExecutor,
    server_cpu: ServerCpu,
) -> dict[str, Any]:
    per_proc = [args.clients // args.client_procs] * args.client_procs
    for i in range(args.clients % args.client_procs):
        per_proc[i] += 1
    t_start = time.time() + 1.0  # let every client process be ready
    t_measure = t_start + args.warmup
    t_stop = t_measure + args.duration
    log(f"{kind}: {args.clients} clients, {args.warmup:g} s warm-up + {args.duration:g} s measured")
    futures = [
        pool.submit(client_process, kind, base, i, n, t_start, t_stop, args.tag)
        for i, n in enumerate(per_proc)
    ]
    time.sleep(max(0.0, t_measure - time.time()))
    busy0, total0 = cpu_ticks()
    snap0 = server_cpu.snapshot()
    time.sleep(max(0.0, t_stop - time.time()))
    busy1, total1 = cpu_ticks()
    used = ServerCpu.used(snap0, server_cpu.snapshot())
    results = [f.result(timeout=args.duration + args.warmup + 30) for f in futures]
    records = [r for res in results for r in res["records"]]
    errors = [e for res in results for e in res["errors"]]
    window = [r for r in records if t_measure <= r[0] <= t_stop]
    ncpu = os.cpu_count() or 1
    out: dict[str, Any] = {
        "ok_total": len(records),
        "errors": errors,
        "count": len(window),
        "rate": len(window) / args.duration,
        "machine_cpu": (busy1 - busy0) / max(1, total1 - total0) * ncpu,
        "client_cpu": sum(res["cpu"] for res in results) / (t_stop - t_start),
        "gunicorn_cpu": used["gunicorn"] / args.duration,
        "pg_cpu": used["pg"] / args.duration,
        # CPU milliseconds the server side (gunicorn + PostgreSQL) spent per request or flow
        "cpu_ms": (used["gunicorn"] + used["pg"]) * 1000 / max(1, len(window)),
        "p50": pct([r[1] for r in window], 50),
        "p95": pct([r[1] for r in window], 95),
    }
    if kind == "apply":
        for i, name in enumerate(("get_apply", "post_apply", "get_confirm", "post_confirm")):
            out[f"{name}_p50"] = pct([r[2 + i] for r in window], 50)
            out[f"{name}_p95"] = pct([r[2 + i] for r in window], 95)
    log(
        f"{kind}: {out['count']} in window ({out['rate']:.1f}/s), p95 {out['p95']:.1f} ms, "
        f"{len(errors)} errors"
    )
    out["other_cpu"] = max(
        0.0, out["machine_cpu"] - out["client_cpu"] - out["gunicorn_cpu"] - out["pg_cpu"]
    )
    log(
        f"{kind}: CPU in cores: gunicorn {out['gunicorn_cpu']:.2f}, "
        f"PostgreSQL {out['pg_cpu']:.2f}, "
        f"load generator {out['client_cpu']:.2f}, everything else on the machine "
        f"{out['other_cpu']:.2f} (of {ncpu}); server CPU {out['cpu_ms']:.2f} ms per "
        + ("request" if kind == "healthz" else "submission")
    )
    return out


def count_rows() -> dict[str, int]:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{DB_NAME}") as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]  # noqa: S608 - fixed names
            for table in ("registration_application", "registration_outboxemail")
        }


def report(health: dict[str, Any], apply: dict[str, Any], args: argparse.Namespace) -> None:
    ratio = apply["rate"] / health["rate"] if health["rate"] else float("nan")
    ok_ratio = ratio >= TARGET_RATIO
    ok_p95 = apply["post_confirm_p95"] < TARGET_P95_MS
    steps = ("get_apply", "post_apply", "get_confirm", "post_confirm")
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
            (label, "", apply[f"{k}_p50"], apply[f"{k}_p95"])
            for label, k in zip(labels, steps, strict=True)
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
    print(f"{'':32} {'throughput':>14} {'p50 ms':>9} {'p95 ms':>9}")
    for name, rate, p50, p95 in rows:
        print(f"{name:32} {rate:>14} {p50:>9.1f} {p95:>9.1f}")
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
        f"p95 of the final POST (submit) = {apply['post_confirm_p95']:.1f} ms "
        f"(target < {TARGET_P95_MS:.0f} ms): {'MET' if ok_p95 else 'MISSED'}; "
        f"whole 4-request flow p95 = {apply['p95']:.1f} ms (shown for reference)"
    )


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument("--duration", type=float, default=15.0, help="measured seconds per phase")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--client-procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--skip-setup", action="store_true", help="reuse the database as it is")
    args = parser.parse_args()
    args.tag = secrets.token_hex(3) + "-"  # e-mails stay unique even with --skip-setup
    if 2 * (args.warmup + args.duration) > 120:
        parser.error("warm-up + duration must stay under 60 s per phase (3-minute budget)")

    server: subprocess.Popen | None = None

    def hard_abort() -> None:
        print(f"ERROR: still running after {HARD_LIMIT_SECONDS} s; aborting", file=sys.stderr)
        stop_gunicorn(server)
        os._exit(1)

    watchdog = threading.Timer(HARD_LIMIT_SECONDS, hard_abort)
    watchdog.daemon = True
    watchdog.start()

    env = dict(os.environ)
    env.update(
        DATABASE_URL=DATABASE_URL,
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        CELERY_TASK_ALWAYS_EAGER="false",
        OUTBOX_SWEEP_AFTER_SECONDS="3600",  # no beat runs; the value only matters to the sweep
        # Every bench client comes from 127.0.0.1: the per-address limit would refuse them.
        RATELIMIT_ENABLE="false",
        VAR_DIR=VAR_DIR,
        LOG_LEVEL="WARNING",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    shutil.rmtree(VAR_DIR, ignore_errors=True)  # the previous run's broker and mail files
    use_redis = redis_answers(REDIS_URL)
    if use_redis:
        env["REDIS_URL"] = REDIS_URL
        empty_redis_queues()  # left over from an interrupted run
        log(f"Redis answers: REDIS_URL={REDIS_URL} (cache and Celery broker)")
    else:
        env.pop("REDIS_URL", None)
        log(
            f"Redis does not answer at {REDIS_URL}: REDIS_URL left unset "
            f"(local-memory cache, Celery's filesystem broker in {VAR_DIR}/broker)"
        )

    failed = False
    try:
        if not args.skip_setup:
            recreate_database()
            log(f"database {DB_NAME}: dropped and recreated")
            collectstatic(env)
            manage(env, "migrate", "--no-input", "-v0")
            manage(env, "seed_demo", "--no-admin")
        before = count_rows()
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        server = start_gunicorn(env, port, args)
        wait_healthy(base, server)
        log(f"gunicorn ready at {base}")
        server_cpu = ServerCpu(server.pid)
        try:
            ctx = mp.get_context("spawn")
            with ProcessPoolExecutor(args.client_procs, mp_context=ctx) as pool:
                health = run_phase("healthz", base, args, pool, server_cpu)
                apply = run_phase("apply", base, args, pool, server_cpu)
        finally:
            server_cpu.close()
        stop_gunicorn(server)
        after = count_rows()

        problems = []
        for phase in (health, apply):
            if phase["errors"]:
                problems.append(f"{len(phase['errors'])} failed requests/flows, e.g.:")
                problems += [f"    {e}" for e in sorted(set(phase["errors"]))[:5]]
        made = {t: after[t] - before[t] for t in after}
        print(
            f"\nVerification: {apply['ok_total']} successful submissions (warm-up included); "
            f"rows created: {made['registration_application']} applications, "
            f"{made['registration_outboxemail']} outbox e-mails"
        )
        if any(v != apply["ok_total"] for v in made.values()):
            problems.append("row counts do not match the successful submissions")
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
        if problems:
            failed = True
            print("\nERRORS:", *problems, sep="\n", file=sys.stderr)
    except Exception as e:
        failed = True
        print(f"ERROR: {type(e).__name__}: {e}", file=sys.stderr)
        if server is not None and Path(GUNICORN_LOG).exists():
            sys.stderr.write("--- gunicorn log (tail) ---\n")
            sys.stderr.write(Path(GUNICORN_LOG).read_text()[-3000:])
    finally:
        stop_gunicorn(server)
        watchdog.cancel()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
