"""Django's database sessions, refusing a session cookie that no session key could be.

Django checks only that a key is at least 8 characters long, so a forged cookie full of NULs
reached PostgreSQL, which refuses NUL in text: an error page on every page that reads the
session. Keys Django makes are lowercase letters and digits; anything else is no session.
"""

from __future__ import annotations

from django.contrib.sessions.backends.db import SessionStore as DatabaseSessionStore


class SessionStore(DatabaseSessionStore):
    def _validate_session_key(self, key: str | None) -> bool:
        # Django's own check (SessionBase) is the length alone.
        return key is not None and len(key) >= 8 and key.isascii() and key.isalnum()
