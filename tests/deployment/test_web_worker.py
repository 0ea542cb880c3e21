"""A web worker stays small: the heavy libraries only staff pages need load when asked for
(bench/memory.py measures the worker itself)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_a_web_worker_loads_no_scipy_numpy_or_openpyxl_until_needed():
    code = (
        "import sys\n"
        "from seminar_site.wsgi import application\n"
        "from django.urls import resolve\n"
        "resolve('/')\n"  # loads the URLconf, the admin and every view module
        "print(sorted(m for m in ('scipy', 'numpy', 'openpyxl') if m in sys.modules))\n"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "REDIS_URL")}
    result = subprocess.run(
        [sys.executable, "-c", code],
        cwd=ROOT,
        env={**env, "DJANGO_SETTINGS_MODULE": "seminar_site.settings"},
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
