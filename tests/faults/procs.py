"""Real processes for the fault tests: the app (gunicorn, a Celery worker, a one-off script) run
as child processes against the test database, and private Redis servers that a test may stop."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from django.db import connection

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_for(check: Callable[[], Any], timeout: float = 20, what: str = "condition") -> Any:
    """Poll ``check`` until it returns something truthy; fail the test after ``timeout``."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            value = check()
        except Exception:  # noqa: BLE001 - not ready yet
            value = None
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.1)


def db_url() -> str:
    """The URL of the database this test runs on (pytest-django's test database)."""
    s = connection.settings_dict
    host = s.get("HOST") or "127.0.0.1"
    port = s.get("PORT") or 5432
    password = f":{s['PASSWORD']}" if s.get("PASSWORD") else ""
    return f"postgres://{s['USER']}{password}@{host}:{port}/{s['NAME']}"


def app_env(tmp_path: Path, **overrides: str) -> dict[str, str]:
    """Environment for a child process of the app: the test database, files under tmp_path,
    no Redis unless given (REDIS_URL=...)."""
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "EMAIL_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="seminar_site.settings",
        DATABASE_URL=db_url(),
        VAR_DIR=str(tmp_path / "var"),
        CELERY_TASK_ALWAYS_EAGER="false",
        PYTHONUNBUFFERED="1",
        PYTHONPATH=str(ROOT),
    )
    env.update(overrides)
    return env


def web_env(tmp_path: Path, workers: int = 2, **overrides: str) -> dict[str, str]:
    """app_env for gunicorn on a free loopback port, ``workers`` processes of 2 threads. DEBUG
    stays on (the embedded default): production mode would also need the static manifest
    (collectstatic) and TLS in front, and neither matters to the faults tested here."""
    return app_env(
        tmp_path,
        DJANGO_DEBUG="true",
        ALLOWED_HOSTS="127.0.0.1",
        GUNICORN_BIND=f"127.0.0.1:{free_port()}",
        GUNICORN_WORKERS=str(workers),
        GUNICORN_THREADS="2",
        **overrides,
    )


def stop(process: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 15) -> None:
    if process.poll() is None:
        process.send_signal(sig)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout)


@contextmanager
def private_redis(tmp_path: Path) -> Iterator[dict[str, Any]]:
    """A Redis server of this test's own on a free port, so stopping it disturbs nothing else.
    Yields {"url": ..., "start": fn, "stop": fn}; stop() shuts it down, start() brings it back
    on the same port."""
    port = free_port()
    state: dict[str, Any] = {"url": f"redis://127.0.0.1:{port}/0", "process": None}

    def start() -> None:
        state["process"] = subprocess.Popen(
            [
                "redis-server",
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(tmp_path),
            ],
            stdout=subprocess.DEVNULL,
        )
        wait_for(lambda: _listening(port), what="redis to listen")

    def halt() -> None:
        if state["process"] is not None:
            stop(state["process"])
            state["process"] = None

    state["start"], state["stop"] = start, halt
    start()
    try:
        yield state
    finally:
        halt()


def _listening(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), 0.2):
        return True


def children(pid: int) -> set[int]:
    """The PIDs of a process's direct children (gunicorn's workers, for its master)."""
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except FileNotFoundError:
        return set()
    return {int(p) for p in text.split()}


def tail(path: Path, lines: int = 40) -> str:
    if not path.exists():
        return f"({path} missing)"
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])


@contextmanager
def _service(
    command: list[str],
    env: dict[str, str],
    log: Path,
    ready: Callable[[subprocess.Popen[Any]], Any],
    what: str,
    sig: int = signal.SIGTERM,
) -> Iterator[subprocess.Popen[Any]]:
    """Run ``command`` with its output in ``log``. Waits generously until ``ready(process)`` is
    truthy (a loaded 2-core machine boots Django slowly) and fails at once, with the log, if the
    process dies; prints the log if the test fails; stops the process with ``sig`` on exit."""
    with log.open("wb") as out:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=out, stderr=out)
    try:
        state = wait_for(
            lambda: "exited" if process.poll() is not None else ready(process), 90, what
        )
        if state == "exited":
            raise AssertionError(f"{what} exited with {process.returncode}")
        yield process
    except BaseException:
        print(f"--- {what} log ({log}) ---\n{tail(log)}")
        raise
    finally:
        stop(process, sig)


@contextmanager
def gunicorn(tmp_path: Path, env: dict[str, str]) -> Iterator[dict[str, Any]]:
    """gunicorn as production runs it (gunicorn.conf.py), bound to env["GUNICORN_BIND"], its
    access log and errors in tmp_path/gunicorn.log. Yields {"url", "process", "log"} once /healthz
    answers and all GUNICORN_WORKERS workers run; graceful shutdown on exit."""
    import httpx

    url = f"http://{env['GUNICORN_BIND']}"
    log = tmp_path / "gunicorn.log"
    workers = int(env.get("GUNICORN_WORKERS", "3"))

    def ready(process: subprocess.Popen[Any]) -> bool:
        return (
            httpx.get(f"{url}/healthz", timeout=2).status_code == 200
            and len(children(process.pid)) == workers
        )

    command = [
        str(BIN / "gunicorn"),
        "--config",
        "gunicorn.conf.py",
        "seminar_site.wsgi:application",
    ]
    with _service(command, env, log, ready, "gunicorn") as process:
        yield {"url": url, "process": process, "log": log}


@contextmanager
def celery_worker(
    tmp_path: Path,
    env: dict[str, str],
    queues: str = "celery,mail",
    name: str = "faults",
    extra: tuple[str, ...] = (),
) -> Iterator[dict[str, Any]]:
    """A Celery worker (solo pool: the work runs in this one process) consuming ``queues``, its
    log in tmp_path/<name>.log; ``extra`` arguments such as ("-B",) for an embedded beat. Yields
    {"process", "log"} once the worker says it is ready; warm shutdown on exit."""
    log = tmp_path / f"{name}.log"
    command = [
        *(str(BIN / "celery"), "-A", "seminar_site", "worker", "-Q", queues),
        *("--pool=solo", "--loglevel=INFO", f"--hostname={name}@%h", *extra),
    ]
    with _service(command, env, log, lambda _: " ready." in log.read_text(), "celery worker") as p:
        yield {"process": p, "log": log}


@contextmanager
def hung_server() -> Iterator[int]:
    """A TCP port that accepts connections and never answers: a Redis that hangs (a paused
    container, a stalled disk, a half-open link). Yields the port."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    listener.settimeout(0.2)
    held: list[socket.socket] = []
    stopping = threading.Event()

    def accept() -> None:
        while not stopping.is_set():
            try:
                held.append(listener.accept()[0])
            except OSError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stopping.set()
        thread.join(5)
        for connection in held:
            connection.close()
        listener.close()
