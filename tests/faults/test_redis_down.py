"""Redis down: parents still apply, every application and its receipt row are saved, and each
receipt goes out exactly once when Redis is back (the outbox sweep, run by a real worker).

Redis is both the Celery broker and the cache of the rate limits; both must fail open and fast.
"""

from __future__ import annotations

import re
import subprocess
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from django.test import Client

from registration.models import Application, Edition, OutboxEmail
from registration.outbox import queue as outbox_queue
from registration.outbox import tasks as outbox_tasks
from tests.registration.helpers import form_data

from . import procs
from .smtp import Sink, smtp_sink

# A parent's phone on a slow line waits longer than this in any case; with Redis down the site
# must not add to it (the broker and the cache each give up after 1 s).
PATIENCE_SECONDS = 2.0
CSRF = re.compile(r'name="csrfmiddlewaretoken" value="([^"]+)"')


@pytest.fixture
def smtp() -> Iterator[tuple[Sink, str]]:
    with smtp_sink() as (sink, port):
        # django-environ reads smtp:// as plain SMTP: no STARTTLS, no login.
        yield sink, f"smtp://127.0.0.1:{port}"


def parent(n: int, edition: Edition) -> dict[str, Any]:
    email = f"parent{n}@example.jp"
    data = form_data(edition, email=email, email_confirm=email, phone=f"090-1234-{n:04d}")
    return {k: [str(x) for x in v] if isinstance(v, list) else str(v) for k, v in data.items()}


def csrf_token(page: httpx.Response) -> str:
    assert page.status_code == 200, page.text[:2000]
    found = CSRF.search(page.text)
    assert found, page.text[:2000]
    return found.group(1)


def timed(send: Any, *args: Any, **kwargs: Any) -> tuple[httpx.Response, float]:
    started = time.monotonic()
    response = send(*args, **kwargs)
    return response, time.monotonic() - started


def fill_in(client: httpx.Client, code: str, data: dict[str, Any]) -> float:
    """入力: the form page, then the answers; returns how long the POST took."""
    token = csrf_token(client.get(f"/{code}/apply/"))
    response, seconds = timed(
        client.post, f"/{code}/apply/", data={**data, "csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["location"] == f"/{code}/apply/confirm/"
    return seconds


def confirm(client: httpx.Client, code: str, email: str) -> float:
    """確認 → 送信 → 完了; returns how long the parent waited from 送信 to the done page."""
    token = csrf_token(client.get(f"/{code}/apply/confirm/"))
    response, post_seconds = timed(
        client.post, f"/{code}/apply/confirm/", data={"csrfmiddlewaretoken": token}
    )
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["location"] == f"/{code}/apply/done/"
    done, get_seconds = timed(client.get, response.headers["location"])
    assert done.status_code == 200 and email in done.text
    return post_seconds + get_seconds


def browser(url: str) -> httpx.Client:
    # A new phone each time: its own cookies (session, CSRF).
    return httpx.Client(base_url=url, timeout=30, follow_redirects=False)


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_parents_apply_while_redis_is_down_and_each_receipt_goes_out_once_it_is_back(
    tmp_path: Path, edition: Edition, smtp: tuple[Sink, str]
) -> None:
    sink, email_url = smtp
    code = edition.code
    with procs.private_redis(tmp_path) as redis:
        env = procs.web_env(
            tmp_path,
            REDIS_URL=redis["url"],
            EMAIL_URL=email_url,
            OUTBOX_SWEEP_AFTER_SECONDS="0",
        )
        with procs.gunicorn(tmp_path, env) as web, procs.celery_worker(tmp_path, env) as worker:
            # Redis up: the receipt goes out through its task at once.
            up = [parent(n, edition) for n in range(2)]
            for data in up:
                with browser(web["url"]) as client:
                    fill_in(client, code, data)
                    confirm(client, code, data["email"])
            procs.wait_for(
                lambda: set(sink.per_recipient()) == {d["email"] for d in up},
                30,
                "receipts via tasks",
            )

            # Redis stops while one parent is between 入力 and 確認, and stays down for more.
            during = parent(2, edition)
            with browser(web["url"]) as client:
                fill_in(client, code, during)
                redis["stop"]()
                waits = {during["email"]: confirm(client, code, during["email"])}
            down = [parent(n, edition) for n in range(3, 8)]
            for data in down:
                with browser(web["url"]) as client:
                    waits[data["email"]] = max(
                        fill_in(client, code, data), confirm(client, code, data["email"])
                    )
            print("seconds to the done page with Redis down:", waits)
            assert max(waits.values()) < PATIENCE_SECONDS, waits

            offline = [during["email"], *(d["email"] for d in down)]
            saved = {
                a.email: a for a in Application.objects.filter(edition=edition, email__in=offline)
            }
            assert set(saved) == set(offline)
            rows = OutboxEmail.objects.filter(application__in=saved.values())
            assert sorted((r.to, r.kind, r.status) for r in rows) == sorted(
                (e, "receipt", "queued") for e in offline
            )
            assert not set(sink.per_recipient()) & set(offline)

            # Redis back (empty, as after a crash without persistence): the worker reconnects
            # and the sweep, published as beat would, sends what the failed publishes left.
            redis["start"]()
            restarted = time.monotonic()
            swept_before = worker["log"].read_text().count("outbox_sweep[")
            subprocess.run(
                [
                    str(procs.BIN / "celery"),
                    "-A",
                    "seminar_site",
                    "call",
                    outbox_tasks.outbox_sweep.name,
                ],
                cwd=procs.ROOT,
                env=env,
                check=True,
                capture_output=True,
                timeout=60,
            )
            everyone = {d["email"] for d in up} | set(offline)
            procs.wait_for(
                lambda: set(sink.per_recipient()) == everyone, 60, "receipts via the sweep"
            )
            procs.wait_for(
                lambda: worker["log"].read_text().count("outbox_sweep[") >= swept_before + 2,
                30,
                "the sweep to finish",  # "received" and "succeeded"
            )
            print(f"all receipts out {time.monotonic() - restarted:.1f} s after Redis restarted")

    assert sink.per_recipient() == Counter(everyone)
    receipts = OutboxEmail.objects.filter(application__edition=edition)
    assert sorted((r.to, r.status, r.attempts) for r in receipts) == sorted(
        (e, "sent", 1) for e in everyone
    )


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_a_redis_that_hangs_costs_a_parent_no_more_than_two_seconds(
    tmp_path: Path, edition: Edition
) -> None:
    """Redis accepts the connection and never answers: the rate-limit counters and the publish
    each give up after their timeouts (0.5 s; the web's BROKER_SOCKET_TIMEOUT as in
    docker-compose.yml), and the application and its receipt are saved all the same."""
    code = edition.code
    with procs.hung_server() as port:
        env = procs.web_env(
            tmp_path,
            workers=1,
            REDIS_URL=f"redis://127.0.0.1:{port}/0",
            BROKER_SOCKET_TIMEOUT="0.5",
        )
        with procs.gunicorn(tmp_path, env) as web:
            data = parent(1, edition)
            with browser(web["url"]) as client:
                waits = [fill_in(client, code, data), confirm(client, code, data["email"])]
    print("seconds with Redis hanging (入力, 送信 to 完了):", waits)
    assert max(waits) < PATIENCE_SECONDS, waits
    application = Application.objects.get(edition=edition, email=data["email"])
    assert OutboxEmail.objects.filter(application=application, status="queued").count() == 1


def submit_in_process(client: Client, edition: Edition) -> Any:
    data = form_data(edition)
    assert client.post(f"/{edition.code}/apply/", data).status_code == 302
    return client.post(f"/{edition.code}/apply/confirm/", follow=True)


@pytest.mark.django_db(transaction=True)
def test_it_shows_the_done_page_when_the_task_cannot_be_published(
    edition: Edition, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[tuple[Any, ...]] = []

    def broker_down(*args: Any, **kwargs: Any) -> None:
        calls.append(args)
        raise ConnectionError("Error 111 connecting to redis:6379. Connection refused.")

    monkeypatch.setattr(outbox_tasks.send_outbox_email, "delay", broker_down)
    response = submit_in_process(Client(raise_request_exception=False), edition)
    assert calls  # the failure was met, after commit
    assert response.redirect_chain == [(f"/{edition.code}/apply/done/", 302)]
    assert response.status_code == 200
    application = Application.objects.get(edition=edition)
    assert OutboxEmail.objects.get(application=application).status == "queued"


@pytest.mark.django_db(transaction=True)
def test_an_error_in_an_on_commit_callback_never_turns_a_saved_application_into_an_error_page(
    edition: Edition, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    def bug(email_id: int) -> None:
        calls.append(email_id)
        raise RuntimeError("a bug after commit")

    monkeypatch.setattr(outbox_queue, "schedule_send", bug)
    response = submit_in_process(Client(raise_request_exception=False), edition)
    assert calls  # the callback ran and raised
    assert Application.objects.filter(edition=edition).exists()  # committed either way
    assert response.redirect_chain == [(f"/{edition.code}/apply/done/", 302)]
    assert response.status_code == 200
    application = Application.objects.get(edition=edition)
    assert OutboxEmail.objects.get(application=application).status == "queued"
