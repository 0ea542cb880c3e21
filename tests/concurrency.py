"""Run work in real threads released at the same instant, for the race tests on PostgreSQL."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable
from typing import Any


def at_once(
    work: Callable[[Any], Any], args: Iterable[Any], timeout: float = 120
) -> tuple[list[Any], list[BaseException]]:
    """Call ``work(arg)`` for each arg, each in its own thread, all released by one barrier.
    Returns the results and the exceptions; every thread closes its database connection."""
    args = list(args)
    barrier = threading.Barrier(len(args))
    results: list[Any] = []
    errors: list[BaseException] = []

    def run(arg: Any) -> None:
        from django.db import connection

        try:
            barrier.wait()
            results.append(work(arg))
        except BaseException as e:  # noqa: BLE001 - returned to the test
            errors.append(e)
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(arg,)) for arg in args]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=timeout)
    return results, errors
