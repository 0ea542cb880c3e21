#!/usr/bin/env python
"""Result e-mails: 10,000 through the outbox to a local SMTP sink, against a bare smtplib loop.

Run from the project root:  .venv/bin/python bench/mail.py   (see bench/README.md)

1. Drops and recreates the PostgreSQL database ``seminar_bench_mail``; a child process runs
   migrate, ``seed_demo --no-admin``, generates N applications in the 2026 edition, freezes and
   draws: the draw queues one result e-mail per application (production settings, no Redis: the
   drain task it publishes lands in a folder nobody reads).
2. Starts an SMTP sink (aiosmtpd, in a process of its own) that counts what it accepts.
3. Baseline, in a fresh process: one ``smtplib.SMTP`` connection, ``sendmail`` N times with
   one rendered result e-mail of the real size (the fastest any sender could go here).
4. The outbox, in a fresh process: ``outbox_drain()``, exactly what the mail worker's task runs:
   claim each e-mail, render it in the parent's language, send it over one connection per
   batch of 200, record it as sent.
5. Checks: every e-mail is "sent" and the sink received 2 × N messages. Prints the table.
   Exit 1 on a correctness failure, 0 otherwise, even when the target is missed.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import resource
import shutil
import smtplib
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from common import django_child_env, drop_database, free_port, recreate_database

ROOT = Path(__file__).resolve().parent.parent
DB_NAME = "seminar_bench_mail"
VAR_DIR = "/tmp/seminar_bench_mail_var"
EDITION = "2026"
HARD_LIMIT_SECONDS = 570
TARGET_PER_SECOND = 200


def _django() -> None:
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


# --- child phases ------------------------------------------------------------------------------


def phase_setup(count: int) -> dict[str, Any]:
    import datetime as dt
    import io

    _django()
    from django.core.management import call_command
    from django.db import transaction

    # Imported once Django is set up for this run's own database.
    from lottery.services import lottery_draw, lottery_freeze
    from registration.management.commands.generate_applications import generate
    from registration.models import Edition, OutboxEmail

    call_command("migrate", verbosity=0)
    call_command("seed_demo", "--no-admin", stdout=io.StringIO())
    edition = Edition.objects.get(code=EDITION)
    with transaction.atomic():
        generate(edition, count=count, random_seed=20262)
    after_close = edition.registration_closes_at + dt.timedelta(hours=1)
    lottery_freeze(
        edition=edition, actor=None, actor_label="bench", confirm_duplicates=True, now=after_close
    )
    lottery_draw(edition=edition, actor=None, actor_label="bench", randomness="bench")
    queued = OutboxEmail.objects.filter(kind="result", status="queued").count()
    return {"queued": queued}


def _sample_message() -> tuple[str, list[str], bytes]:
    """One real result e-mail, rendered as the outbox renders it."""
    from django.conf import settings
    from django.core.mail import EmailMultiAlternatives

    # Imported once Django is set up for this run's own database.
    from registration.models import OutboxEmail
    from registration.outbox.render import render

    email = OutboxEmail.objects.filter(kind="result").select_related("application").first()
    assert email is not None
    subject, text, html = render(email)
    message = EmailMultiAlternatives(
        subject, text, settings.DEFAULT_FROM_EMAIL, [email.to], alternatives=[(html, "text/html")]
    )
    return settings.DEFAULT_FROM_EMAIL, [email.to], message.message().as_bytes(linesep="\r\n")


def phase_baseline(count: int, port: int) -> dict[str, Any]:
    _django()
    sender, to, payload = _sample_message()
    cpu, t0 = _cpu(), time.perf_counter()
    with smtplib.SMTP("127.0.0.1", port) as smtp:
        for _ in range(count):
            smtp.sendmail(sender, to, payload)
    return {
        "seconds": time.perf_counter() - t0,
        "cpu": _cpu() - cpu,
        "bytes": len(payload),
    }


def phase_outbox(count: int, profile: str | None) -> dict[str, Any]:
    _django()
    from django.db.models import Count

    # Imported once Django is set up for this run's own database.
    from registration.models import OutboxEmail
    from registration.outbox.send import outbox_drain

    profiler = None
    if profile:
        import cProfile

        profiler = cProfile.Profile()
        profiler.enable()
    cpu, t0 = _cpu(), time.perf_counter()
    sent = outbox_drain()
    seconds = time.perf_counter() - t0
    if profiler:
        profiler.disable()
        profiler.dump_stats(profile)
    statuses = dict(
        OutboxEmail.objects.filter(kind="result").values_list("status").annotate(n=Count("pk"))
    )
    return {"seconds": seconds, "cpu": _cpu() - cpu, "sent": sent, "statuses": statuses}


# --- the SMTP sink -----------------------------------------------------------------------------


def _sink(port: int, received: Any, ready: Any) -> None:
    import logging

    from aiosmtpd.controller import Controller

    logging.getLogger("mail.log").setLevel(logging.WARNING)

    class Counter:
        async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
            with received.get_lock():
                received.value += 1
            return "250 OK"

    controller = Controller(Counter(), hostname="127.0.0.1", port=port)
    controller.start()
    ready.set()
    while True:
        time.sleep(3600)


# --- parent ------------------------------------------------------------------------------------


def _child_env(port: int) -> dict[str, str]:
    return django_child_env(
        DB_NAME, VAR_DIR, EMAIL_URL=f"smtp://127.0.0.1:{port}", OUTBOX_RATE_PER_SECOND="0"
    )


def _run(phase: str, args: argparse.Namespace, port: int, deadline: float, workdir: str) -> Any:
    out = Path(workdir) / f"{phase}.json"
    cmd = [sys.executable, str(Path(__file__).resolve()), "--phase", phase, "--out", str(out)]
    cmd += ["--count", str(args.count), "--port", str(port)]
    if args.profile:
        cmd += ["--profile", str(Path(args.profile).resolve())]
    print(f"[{time.strftime('%H:%M:%S')}] {phase}…", flush=True)
    proc = subprocess.Popen(cmd, cwd=ROOT, env=_child_env(port))
    try:
        rc = proc.wait(timeout=max(deadline - time.monotonic(), 1))
    except subprocess.TimeoutExpired:
        proc.kill()
        raise TimeoutError(phase) from None
    if rc != 0 or not out.exists():
        raise RuntimeError(f"the {phase} phase failed (exit status {rc})")
    return json.loads(out.read_text())


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--count", type=int, default=10_000, help="e-mails (10,000)")
    parser.add_argument(
        "--profile", metavar="FILE", help="cProfile the outbox phase into FILE (slows it)"
    )
    parser.add_argument("--phase", choices=["setup", "baseline", "outbox"], help=argparse.SUPPRESS)
    parser.add_argument("--out", help=argparse.SUPPRESS)
    parser.add_argument("--port", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.phase:
        phases = {
            "setup": lambda: phase_setup(args.count),
            "baseline": lambda: phase_baseline(args.count, args.port),
            "outbox": lambda: phase_outbox(args.count, args.profile),
        }
        Path(args.out).write_text(json.dumps(phases[args.phase]()))
        return 0

    port = free_port()
    deadline = time.monotonic() + HARD_LIMIT_SECONDS
    workdir = tempfile.mkdtemp(prefix="seminar_bench_mail_")
    received = mp.Value("l", 0)
    ready = mp.Event()
    sink = mp.Process(target=_sink, args=(port, received, ready), daemon=True)
    try:
        recreate_database(DB_NAME)
        shutil.rmtree(VAR_DIR, ignore_errors=True)
        setup = _run("setup", args, port, deadline, workdir)
        if setup["queued"] != args.count:
            print(f"CORRECTNESS FAILURE: {setup['queued']} e-mails queued", file=sys.stderr)
            return 1
        sink.start()
        ready.wait(10)
        baseline = _run("baseline", args, port, deadline, workdir)
        outbox = _run("outbox", args, port, deadline, workdir)
        problems = []
        if outbox["statuses"] != {"sent": args.count} or outbox["sent"] != args.count:
            problems.append(f"outbox statuses {outbox['statuses']}, sent {outbox['sent']}")
        if received.value != 2 * args.count:
            problems.append(f"the sink received {received.value}, expected {2 * args.count}")
        report(args.count, baseline, outbox)
        for problem in problems:
            print(f"CORRECTNESS FAILURE: {problem}", file=sys.stderr)
        return 1 if problems else 0
    except (TimeoutError, RuntimeError) as e:
        print(f"ERROR: {e}", file=sys.stderr)
        return 1
    finally:
        if sink.is_alive():
            sink.terminate()
        shutil.rmtree(workdir, ignore_errors=True)
        shutil.rmtree(VAR_DIR, ignore_errors=True)
        try:
            drop_database(DB_NAME)
        except Exception as e:
            print(f"warning: could not drop {DB_NAME}: {e!r}", file=sys.stderr)


def report(count: int, baseline: dict[str, Any], outbox: dict[str, Any]) -> None:
    base_rate = count / baseline["seconds"]
    rate = count / outbox["seconds"]
    print()
    print(f"{count:,} result e-mails ({baseline['bytes']:,} bytes each) to a local SMTP sink")
    print()
    print("| sender | seconds | e-mails/s | CPU ms/e-mail | ÷ smtplib |")
    print("|---|---|---|---|---|")
    print(
        f"| bare smtplib loop, one connection | {baseline['seconds']:.1f} | {base_rate:,.0f} "
        f"| {1000 * baseline['cpu'] / count:.2f} | 1.00 |"
    )
    print(
        f"| outbox_drain (claim, render, send, record) | {outbox['seconds']:.1f} | {rate:,.0f} "
        f"| {1000 * outbox['cpu'] / count:.2f} | {rate / base_rate:.2f} |"
    )
    verdict = "met" if rate >= TARGET_PER_SECOND else "MISSED"
    print()
    print(f"Target: ≥ {TARGET_PER_SECOND} e-mails/s through the outbox: {verdict} ({rate:,.0f}/s)")


if __name__ == "__main__":
    sys.exit(main())
