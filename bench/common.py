"""What the HTTP benches share: the database, gunicorn, the load driver and CPU accounting.

Used by bench/apply.py, bench/home.py and bench/memory.py (see bench/README.md):

- ``production_env`` and ``prepare_database``: a ``seminar_bench*`` PostgreSQL database set up
  with production settings (DJANGO_DEBUG=false), Redis database 15 when Redis answers;
- ``start_gunicorn`` / ``wait_healthy`` / ``stop_gunicorn``: gunicorn on a free loopback port,
  reading ./gunicorn.conf.py like production, with worker recycling turned off;
- ``run_phase``: clients (threads with one httpx.Client each, spread over client processes so
  that the load generator is not limited by one GIL) repeat a *work* function for a warm-up and
  a measured window; returns rate, p50/p95 and the server's CPU per request;
- ``ServerCpu``: CPU of gunicorn (master and workers) and of the bench database's PostgreSQL
  backends, read from /proc; on a shared machine it depends much less on the neighbours than
  wall-clock throughput does;
- ``start_watchdog``: every run stays bounded, whatever happens;
- ``GunicornRun``: a main()'s watchdog, error report, ERRORS block, gunicorn stop and exit status;
- ``recreate_database`` / ``drop_database`` / ``django_child_env``: also used by bench/mail.py
  and bench/lottery.py.

A work function is a module-level callable ``work(client, base, n) -> list[float]``: it does one
request or flow against ``base`` ("http://127.0.0.1:PORT"), raises ``FlowError`` when the
answer is wrong, and returns the latencies of its steps (empty for a single request). ``n`` is
unique per call within a run. Bind extra arguments with ``functools.partial``: work functions
are pickled to the client processes.

This module must stay importable without side effects: client processes import it.
"""

from __future__ import annotations

import argparse
import os
import secrets
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from types import TracebackType
from typing import Any

import httpx
import psycopg

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent  # .venv/bin when run as .venv/bin/python
PG_ADMIN_DSN = "postgresql://postgres@127.0.0.1:5432/postgres"
# A Redis database of its own: the tasks a bench publishes (and deletes at the end) must not
# land in a queue that a developer's worker reads, since their ids refer to the bench database.
REDIS_URL = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/15")
GUNICORN_LOG = "/tmp/seminar_bench_gunicorn.log"

Work = Callable[[httpx.Client, str, int], list[float]]


class FlowError(Exception):
    pass


def log(msg: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {msg}", flush=True)


def start_watchdog(seconds: float, on_abort: Callable[[], None]) -> threading.Timer:
    """After ``seconds``, call ``on_abort`` (which should stop the server) and exit with 1."""

    def abort() -> None:
        print(f"ERROR: still running after {seconds:.0f} s; aborting", file=sys.stderr)
        on_abort()
        os._exit(1)

    timer = threading.Timer(seconds, abort)
    timer.daemon = True
    timer.start()
    return timer


def load_arguments(parser: argparse.ArgumentParser, *, duration: float, warmup: float) -> None:
    """The options every HTTP bench takes: load, gunicorn worker model, setup."""
    parser.add_argument("--clients", type=int, default=20)
    parser.add_argument(
        "--duration", type=float, default=duration, help="measured seconds per phase"
    )
    parser.add_argument("--warmup", type=float, default=warmup)
    parser.add_argument("--client-procs", type=int, default=2, help="load generator processes")
    parser.add_argument("--workers", type=int, default=2, help="gunicorn workers")
    parser.add_argument("--worker-class", default="gthread", choices=["sync", "gthread"])
    parser.add_argument("--threads", type=int, default=4, help="threads per gthread worker")
    parser.add_argument("--skip-setup", action="store_true", help="reuse the database as it is")


# ---------------------------------------------------------------------------------------------
# Database and settings
# ---------------------------------------------------------------------------------------------


def database_url(db_name: str) -> str:
    return f"postgres://postgres@127.0.0.1:5432/{db_name}"


def redis_answers(url: str) -> bool:
    try:
        import redis

        client = redis.Redis.from_url(url, socket_timeout=0.5, socket_connect_timeout=0.5)
        return bool(client.ping())
    except Exception:
        return False


def empty_redis_queues(url: str = REDIS_URL) -> int:
    """Delete the Celery queues (Redis lists) in the bench's Redis database; return their length."""
    import redis

    client = redis.Redis.from_url(url)
    total = 0
    for key in client.scan_iter():
        if client.type(key) == b"list":
            total += int(client.llen(key))
            client.delete(key)
    return total


def production_env(db_name: str, var_dir: str) -> tuple[dict[str, str], bool]:
    """The environment of manage.py and gunicorn: production settings on the bench database.

    Returns it and whether Redis answers (then REDIS_URL is the bench's own Redis database, for
    the cache and the Celery broker; otherwise the local-memory cache and the filesystem broker).
    """
    env = dict(os.environ)
    env.update(
        DATABASE_URL=database_url(db_name),
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(50),
        ALLOWED_HOSTS="127.0.0.1,localhost",
        SECURE_SSL_REDIRECT="false",
        CELERY_TASK_ALWAYS_EAGER="false",
        OUTBOX_SWEEP_AFTER_SECONDS="3600",  # no beat runs; the value only matters to the sweep
        # Every bench client comes from 127.0.0.1: the per-address limit would refuse them.
        RATELIMIT_ENABLE="false",
        VAR_DIR=var_dir,
        LOG_LEVEL="WARNING",
    )
    env.pop("DJANGO_SETTINGS_MODULE", None)
    shutil.rmtree(var_dir, ignore_errors=True)  # the previous run's broker and mail files
    use_redis = redis_answers(REDIS_URL)
    if use_redis:
        env["REDIS_URL"] = REDIS_URL
        empty_redis_queues()  # left over from an interrupted run
        log(f"Redis answers: REDIS_URL={REDIS_URL} (cache and Celery broker)")
    else:
        env.pop("REDIS_URL", None)
        log(
            f"Redis does not answer at {REDIS_URL}: REDIS_URL left unset "
            f"(local-memory cache, Celery's filesystem broker in {var_dir}/broker)"
        )
    return env, use_redis


def django_child_env(db_name: str, var_dir: str, **extra: str) -> dict[str, str]:
    """The environment of bench/lottery.py's and bench/mail.py's Django child processes.

    Production-like settings (``DJANGO_DEBUG=false``: Django keeps no SQL of its queries) on
    ``db_name``, no ``REDIS_URL`` (Celery's filesystem broker in ``var_dir``, that no worker
    reads), no inherited ``EMAIL_URL``; ``extra`` adds or overrides variables.
    """
    dropped = ("REDIS_URL", "EMAIL_URL", "DATABASE_URL")
    env = {k: v for k, v in os.environ.items() if k not in dropped}
    env.update(
        DJANGO_SETTINGS_MODULE="seminar_site.settings",
        DATABASE_URL=database_url(db_name),
        DJANGO_DEBUG="false",
        SECRET_KEY=secrets.token_urlsafe(40),
        SECURE_SSL_REDIRECT="false",
        CELERY_TASK_ALWAYS_EAGER="false",
        VAR_DIR=var_dir,
        LOG_LEVEL="WARNING",
        **extra,
    )
    return env


def admin_connection() -> psycopg.Connection[Any]:
    """A connection to the ``postgres`` database, outside any transaction (CREATE/DROP DATABASE)."""
    return psycopg.connect(PG_ADMIN_DSN, autocommit=True, connect_timeout=5)


def drop_database(db_name: str) -> None:
    """Drop ``db_name`` if it exists, disconnecting whoever is still connected to it."""
    with admin_connection() as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')


def recreate_database(db_name: str) -> None:
    drop_database(db_name)
    with admin_connection() as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')


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


def prepare_database(env: dict[str, str], db_name: str) -> None:
    """Drop and recreate ``db_name``; collectstatic, migrate and seed_demo --no-admin into it."""
    recreate_database(db_name)
    log(f"database {db_name}: dropped and recreated")
    # collectstatic with the real settings: whitenoise's manifest storage needs it.
    manage(env, "collectstatic", "--noinput", "-v0")
    manage(env, "migrate", "--no-input", "-v0")
    manage(env, "seed_demo", "--no-admin")


def count_rows(db_name: str, tables: Sequence[str]) -> dict[str, int]:
    with psycopg.connect(f"postgresql://postgres@127.0.0.1:5432/{db_name}") as conn:
        return {
            table: conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0]  # type: ignore[index]  # noqa: S608 - fixed names
            for table in tables
        }


# ---------------------------------------------------------------------------------------------
# gunicorn
# ---------------------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def start_gunicorn(
    env: dict[str, str],
    port: int,
    args: argparse.Namespace,
    *,
    extra: Sequence[str] = (),
    log_path: str = GUNICORN_LOG,
) -> subprocess.Popen:
    """gunicorn with ./gunicorn.conf.py, ``args.worker_class``/``workers``/``threads``."""
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
        *extra,
    ]
    if args.worker_class == "gthread":
        cmd += ["--threads", str(args.threads)]
    log("gunicorn: " + " ".join(cmd[1:]))
    logfile = open(log_path, "w")  # noqa: SIM115 - lives as long as the server
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


def wait_healthy(
    base: str, proc: subprocess.Popen, timeout: float = 30, log_path: str = GUNICORN_LOG
) -> None:
    deadline = time.monotonic() + timeout
    with httpx.Client(timeout=2.0, trust_env=False) as c:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"gunicorn exited ({proc.returncode}); see {log_path}")
            try:
                if c.get(f"{base}/healthz").status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.2)
    raise RuntimeError(f"/healthz did not answer 200 within {timeout:.0f} s")


def gunicorn_pids(master: int) -> list[int]:
    """The master first, then its workers."""
    pids = [master]
    try:
        for task in os.listdir(f"/proc/{master}/task"):
            with open(f"/proc/{master}/task/{task}/children") as f:
                pids += [int(p) for p in f.read().split()]
    except OSError:
        pass
    return pids


def print_gunicorn_log_tail(log_path: str = GUNICORN_LOG) -> None:
    if Path(log_path).exists():
        sys.stderr.write("--- gunicorn log (tail) ---\n")
        sys.stderr.write(Path(log_path).read_text()[-3000:])


class GunicornRun:
    """The life of an HTTP bench's ``main()`` around its gunicorn server::

        with GunicornRun(HARD_LIMIT_SECONDS, GUNICORN_LOG) as run:
            ...
            server = run.server = start_gunicorn(...)
            ...
            run.problems.append("...")  # a wrong answer: the run fails, its numbers still print
        return run.status

    Entering starts the watchdog (after ``hard_limit`` seconds it stops ``run.server`` and
    exits with 1). Leaving prints the ERRORS block when the body ended with ``problems``, or,
    when the body raised an Exception, the error and the tail of gunicorn's log (the exception
    is then swallowed); in every case it stops gunicorn and cancels the watchdog. ``status`` is
    the exit status: 1 after problems or an exception, 0 otherwise, even when a target is
    missed (it is a measurement).
    """

    def __init__(self, hard_limit: float, log_path: str = GUNICORN_LOG) -> None:
        self.hard_limit = hard_limit
        self.log_path = log_path
        self.server: subprocess.Popen | None = None
        self.problems: list[str] = []
        self.failed = False
        self._watchdog: threading.Timer | None = None

    def __enter__(self) -> GunicornRun:
        self._watchdog = start_watchdog(self.hard_limit, lambda: stop_gunicorn(self.server))
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> bool:
        try:
            if exc is None:
                if self.problems:
                    self.failed = True
                    print("\nERRORS:", *self.problems, sep="\n", file=sys.stderr)
            elif isinstance(exc, Exception):
                self.failed = True
                print(f"ERROR: {type(exc).__name__}: {exc}", file=sys.stderr)
                if self.server is not None:
                    print_gunicorn_log_tail(self.log_path)
        finally:
            stop_gunicorn(self.server)
            if self._watchdog is not None:
                self._watchdog.cancel()
        return isinstance(exc, Exception)  # KeyboardInterrupt and SystemExit go on

    @property
    def status(self) -> int:
        return 1 if self.failed else 0


# ---------------------------------------------------------------------------------------------
# CPU accounting
# ---------------------------------------------------------------------------------------------

CLK_TCK = os.sysconf("SC_CLK_TCK")


def cpu_ticks() -> tuple[int, int]:
    """(busy, total) jiffies of the whole machine, from /proc/stat."""
    with open("/proc/stat") as f:
        values = [int(v) for v in f.readline().split()[1:]]
    idle = values[3] + values[4]
    return sum(values) - idle, sum(values)


def proc_cpu(pid: int) -> float | None:
    """User + system CPU seconds of one process, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


Snapshot = dict[str, dict[int, float]]  # group → pid → CPU seconds


class ServerCpu:
    """CPU used by gunicorn (master and workers) and by the bench database's PostgreSQL backends.

    On a shared machine, wall-clock throughput depends on what else runs; CPU per request does
    much less, so it is reported too.
    """

    def __init__(self, master: int, db_name: str) -> None:
        self.master = master
        self.db_name = db_name
        self.pg = psycopg.connect(
            f"postgresql://postgres@127.0.0.1:5432/{db_name}", autocommit=True
        )

    def pg_pids(self) -> list[int]:
        rows = self.pg.execute(
            "SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
            [self.db_name],
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


# ---------------------------------------------------------------------------------------------
# Load driver (client side runs in client processes)
# ---------------------------------------------------------------------------------------------


def healthz(client: httpx.Client, base: str, n: int) -> list[float]:
    """The trivial view every bench compares against."""
    r = client.get(f"{base}/healthz")
    if r.status_code != 200:
        raise FlowError(f"GET /healthz: HTTP {r.status_code}")
    return []


def client_process(
    work: Work, base: str, proc_no: int, threads: int, t_start: float, t_stop: float
) -> dict[str, Any]:
    """Run ``threads`` clients from wall time t_start until t_stop; return their records.

    A record is (end_time, latency, *step latencies).
    """
    records: list[tuple[float, ...]] = []
    errors: list[str] = []
    lock = threading.Lock()

    def run(thread_no: int) -> None:
        mine: list[tuple[float, ...]] = []
        seq = 0
        with httpx.Client(timeout=10.0, trust_env=False, follow_redirects=False) as client:
            while time.time() < t_stop:
                # Unique per client and call: submissions derive e-mail, phone and name from it.
                n = (proc_no * 100 + thread_no) * 100_000 + seq
                seq += 1
                try:
                    client.cookies.clear()
                    t = time.perf_counter()
                    steps = work(client, base, n)
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


def run_phase(
    name: str,
    work: Work,
    base: str,
    args: argparse.Namespace,
    pool: ProcessPoolExecutor,
    server_cpu: ServerCpu,
    *,
    unit: str = "request",
) -> dict[str, Any]:
    """``args.clients`` clients repeat ``work`` for ``args.warmup`` + ``args.duration`` seconds.

    Returns the count and rate of calls that ended inside the measured window, their p50/p95
    (and each step's, as ``steps_p50``/``steps_p95``), the CPU the server side used per call
    (``cpu_ms``: gunicorn + PostgreSQL) and how busy the rest of the machine was.
    """
    per_proc = [args.clients // args.client_procs] * args.client_procs
    for i in range(args.clients % args.client_procs):
        per_proc[i] += 1
    t_start = time.time() + 1.0  # let every client process be ready
    t_measure = t_start + args.warmup
    t_stop = t_measure + args.duration
    log(f"{name}: {args.clients} clients, {args.warmup:g} s warm-up + {args.duration:g} s measured")
    futures = [
        pool.submit(client_process, work, base, i, n, t_start, t_stop)
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
    nsteps = min((len(r) - 2 for r in window), default=0)
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
        "steps_p50": [pct([r[2 + i] for r in window], 50) for i in range(nsteps)],
        "steps_p95": [pct([r[2 + i] for r in window], 95) for i in range(nsteps)],
    }
    log(
        f"{name}: {out['count']} in window ({out['rate']:.1f}/s), p95 {out['p95']:.1f} ms, "
        f"{len(errors)} errors"
    )
    out["other_cpu"] = max(
        0.0, out["machine_cpu"] - out["client_cpu"] - out["gunicorn_cpu"] - out["pg_cpu"]
    )
    log(
        f"{name}: CPU in cores: gunicorn {out['gunicorn_cpu']:.2f}, "
        f"PostgreSQL {out['pg_cpu']:.2f}, "
        f"load generator {out['client_cpu']:.2f}, everything else on the machine "
        f"{out['other_cpu']:.2f} (of {ncpu}); server CPU {out['cpu_ms']:.2f} ms per {unit}"
    )
    return out


def phase_errors(phases: dict[str, dict[str, Any]]) -> list[str]:
    """A few failed requests of each phase, for the ERRORS block."""
    problems = []
    for name, phase in phases.items():
        if phase["errors"]:
            problems.append(f"{name}: {len(phase['errors'])} failed requests/flows, e.g.:")
            problems += [f"    {e}" for e in sorted(set(phase["errors"]))[:5]]
    return problems


def print_table(
    headers: Sequence[str], rows: Sequence[Sequence[str]], widths: Sequence[int]
) -> None:
    """First column left-aligned, the others right-aligned."""
    for row in (headers, *rows):
        cells = [f"{row[0]:{widths[0]}}"]
        cells += [f"{cell:>{w}}" for cell, w in zip(row[1:], widths[1:], strict=True)]
        print(" ".join(cells))
