# The two commands: `make run` and `make test`. Both install what they need into .venv.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
CELERY := $(VENV)/bin/celery
STAMP := $(VENV)/.installed-$(shell sha1sum pyproject.toml | cut -c1-12)
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: install messages run test lint typecheck pytest bench clean

$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e ".[dev]"
	rm -f $(VENV)/.installed-* && touch $(STAMP)

install: $(STAMP)

# .po files are committed; the .mo files are built here.
messages: install
	$(PY) manage.py compilemessages --ignore=.venv -v0

# The whole system on the embedded default: SQLite, Celery worker and beat on kombu's
# filesystem transport (no Redis), e-mails written to var/mail/.
run: messages
	mkdir -p var/mail
	$(PY) manage.py migrate --no-input
	$(PY) manage.py seed_demo
	@echo "Site: http://$(HOST):$(PORT)/   Admin: http://$(HOST):$(PORT)/admin/   E-mails: var/mail/"
	@trap 'kill 0' EXIT; \
	$(CELERY) -A seminar_site worker --pool=solo -Q celery,mail --loglevel=INFO & \
	$(CELERY) -A seminar_site beat --loglevel=INFO & \
	$(PY) manage.py runserver $(HOST):$(PORT)

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

typecheck: install
	$(VENV)/bin/mypy .

pytest: messages
	$(VENV)/bin/pytest

test: lint typecheck pytest

bench: messages
	$(PY) bench/apply.py
	$(PY) bench/lottery.py
	$(PY) bench/mail.py
	$(PY) bench/admin.py
	$(PY) bench/home.py
	$(PY) bench/memory.py

clean:
	rm -rf var staticfiles .mypy_cache .ruff_cache .pytest_cache
