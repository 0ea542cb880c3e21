"""Issue 10, findings 2 and 5, on a real gunicorn run as production runs it (gunicorn.conf.py):
the access log holds no private link and no staff search, and a huge upload is refused before a
byte of it is stored."""

from __future__ import annotations

import contextlib
import socket
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from registration.tokens import PLACEHOLDER, make_token
from tests.factories import ApplicationFactory, EditionFactory
from tests.faults import procs

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

SEARCH = "山田花子"


def test_the_access_log_of_a_real_gunicorn_run_holds_no_token_and_no_search(tmp_path):
    edition = EditionFactory()
    application = ApplicationFactory(edition=edition)
    token = make_token(application.number)
    tampered = token[:-3] + "xyz"
    env = procs.web_env(tmp_path, workers=1)
    with procs.gunicorn(tmp_path, env) as web, httpx.Client(base_url=web["url"]) as client:
        for path in (
            f"/my/{token}/",
            f"/en/my/{token}/ticket/",
            f"/my/{token}/calendar.ics",
            f"/my/{token}/withdraw/",
            f"/my/{tampered}/",  # 404: Django logs "Not Found: <path>" to the same file
            f"/my%2F{token}/",  # a client that encodes the slash still reaches the page
        ):
            assert client.get(path).status_code in (200, 302, 404), path
        # A page that links to itself: the referrer the next request carries.
        assert client.get("/my/", headers={"Referer": f"{web['url']}/my/{token}/"}).is_success
        # Staff searches, logged in or not (the login redirect repeats the query in ?next=).
        for query in ({"q": SEARCH}, {"q": application.email}, {"q": application.phone}):
            client.get("/admin/registration/application/", params=query)
            client.get(
                f"/admin/registration/session/{application.choice_1.session_id}/checkin/",
                params=query,
            )
    log = web["log"].read_text(errors="replace")
    requests = [line for line in log.splitlines() if " HTTP/1.1" in line]
    assert len(requests) >= 12, log
    for secret in (
        token,
        tampered,
        token.split(":")[-1],  # the signature alone
        SEARCH,
        quote(SEARCH),
        application.email,
        quote(application.email),
        application.phone,
    ):
        assert secret not in log, secret
    assert f"/my/{PLACEHOLDER}/ticket/" in log
    assert "?q=*" in log


@pytest.mark.django_db(transaction=False)
def test_gunicorns_error_log_is_redacted_too(tmp_path):
    """gunicorn logs "Error handling request <uri>" when a request escapes the app."""
    from gunicorn.config import Config

    from seminar_site.logs import GunicornLogger

    config = Config()
    config.set("errorlog", str(tmp_path / "error.log"))
    logger = GunicornLogger(config)
    token = make_token("ABCDEFGH")
    logger.exception("Error handling request %s", f"/my/{token}/withdraw/?q=山田")
    logger.error("Error handling request %s", f"/en/my/{token}/")
    log = (tmp_path / "error.log").read_text()
    assert token not in log and "山田" not in log
    assert log.count(f"/my/{PLACEHOLDER}/") == 2


def test_a_500_mib_upload_gets_400_before_anything_is_written(tmp_path):
    edition = EditionFactory()
    temp = tmp_path / "tmp"
    temp.mkdir()
    env = procs.web_env(tmp_path, workers=1, TMPDIR=str(temp))
    with procs.gunicorn(tmp_path, env) as web:
        host, port = web["url"].removeprefix("http://").split(":")
        status = _post_huge_multipart(host, int(port), f"/{edition.code}/apply/", 500 * 2**20)
    assert status == 400
    assert list(temp.iterdir()) == []
    assert not list(Path(env["VAR_DIR"]).rglob("*.upload*"))


def _post_huge_multipart(host: str, port: int, path: str, size: int) -> int:
    """Announce a ``size``-byte multipart body with one file, send its first MiB, and return the
    status the server answers with (without waiting for the rest to be sent)."""
    boundary = "x" * 20
    head = (
        f"--{boundary}\r\n"
        'Content-Disposition: form-data; name="attachment"; filename="big.bin"\r\n'
        "Content-Type: application/octet-stream\r\n\r\n"
    ).encode()
    request = (
        f"POST {path} HTTP/1.1\r\nHost: {host}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {size}\r\nConnection: close\r\n\r\n"
    ).encode()
    with socket.create_connection((host, port), timeout=30) as sock:
        sock.sendall(request + head)
        # The server may answer and close before reading this much.
        with contextlib.suppress(OSError):
            sock.sendall(b"\0" * 2**20)
        answer = sock.recv(200).decode("latin-1")
    return int(answer.split()[1])
