"""One global sending rate for every mail worker: OUTBOX_RATE_PER_SECOND e-mails a second.

The counter is a moving window kept by the ``limits`` library in Redis (REDIS_URL), so two mail
workers together stay under the mail provider's limit; without Redis (the embedded mode, one
worker) it lives in the process. If Redis cannot be reached the worker paces itself alone.
"""

from __future__ import annotations

import functools
import logging
import time

from django.conf import settings
from limits import RateLimitItem, RateLimitItemPerSecond
from limits.storage import MemoryStorage, RedisStorage, Storage
from limits.strategies import MovingWindowRateLimiter

log = logging.getLogger(__name__)
KEY = "outbox"


@functools.cache
def _limiter(redis_url: str, per_second: int) -> tuple[MovingWindowRateLimiter, RateLimitItem]:
    storage: Storage = (
        RedisStorage(redis_url, socket_timeout=1, socket_connect_timeout=1)
        if redis_url
        else MemoryStorage()
    )
    return MovingWindowRateLimiter(storage), RateLimitItemPerSecond(per_second)


def wait() -> None:
    """Return when this worker may send one more e-mail."""
    per_second = settings.OUTBOX_RATE_PER_SECOND
    if per_second <= 0:
        return
    limiter, item = _limiter(settings.REDIS_URL, per_second)
    while True:
        try:
            if limiter.hit(item, KEY):
                return
            reset_at = limiter.get_window_stats(item, KEY).reset_time
        except Exception:  # Redis unavailable: pace this worker on its own
            log.warning("Rate counter unavailable; pacing this worker alone", exc_info=True)
            time.sleep(1 / per_second)
            return
        time.sleep(min(max(reset_at - time.time(), 0.001), 1.0))
