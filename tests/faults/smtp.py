"""A real SMTP server for the tests (aiosmtpd), scripted to refuse what a test wants refused."""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from email import message_from_bytes
from email.message import Message
from typing import Any

from aiosmtpd.controller import Controller

from .procs import free_port


class Sink:
    """Accepts every message unless ``script`` says otherwise: ``script[address]`` is the list of
    replies to give, in order, to the next messages for that address ("451 ...", "550 ..."), or
    one reply string to give for ever. Counts what it delivered, per recipient."""

    def __init__(self, script: dict[str, Any] | None = None) -> None:
        self.script = dict(script or {})
        self.refuse_sender = ""  # e.g. "550 5.7.1 Sender not allowed": every MAIL FROM refused
        self.delivered: list[tuple[str, Message]] = []
        self.tries: Counter[str] = Counter()
        self.lock = threading.Lock()

    async def handle_MAIL(  # noqa: N802
        self, server: Any, session: Any, envelope: Any, address: str, options: list[str]
    ) -> str:
        if self.refuse_sender:
            return self.refuse_sender
        envelope.mail_from = address
        envelope.mail_options.extend(options)
        return "250 OK"

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.tries[rcpt] += 1
            reply = self._reply(envelope.rcpt_tos)
            if reply.startswith("250"):
                message = message_from_bytes(envelope.content)
                for rcpt in envelope.rcpt_tos:
                    self.delivered.append((rcpt, message))
            return reply

    def _reply(self, rcpts: list[str]) -> str:
        for rcpt in rcpts:
            planned = self.script.get(rcpt)
            if isinstance(planned, str):
                return planned
            if planned:
                return str(planned.pop(0))
        return "250 OK"

    def count(self) -> int:
        with self.lock:
            return len(self.delivered)

    def per_recipient(self) -> Counter[str]:
        with self.lock:
            return Counter(rcpt for rcpt, _ in self.delivered)


@contextmanager
def smtp_sink(script: dict[str, Any] | None = None) -> Iterator[tuple[Sink, int]]:
    """Run a Sink on a free loopback port; yields (sink, port)."""
    logging.getLogger("mail.log").setLevel(logging.WARNING)  # aiosmtpd logs every command
    sink = Sink(script)
    port = free_port()
    controller = Controller(sink, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield sink, port
    finally:
        controller.stop()


def use_sink(settings: Any, port: int) -> None:
    """Point Django's SMTP backend at the sink (the ``settings`` fixture)."""
    settings.EMAIL_BACKEND = "django.core.mail.backends.smtp.EmailBackend"
    settings.EMAIL_HOST = "127.0.0.1"
    settings.EMAIL_PORT = port
    settings.EMAIL_USE_TLS = False
    settings.EMAIL_USE_SSL = False
    settings.EMAIL_HOST_USER = ""
    settings.EMAIL_HOST_PASSWORD = ""
