# Two commands on a fresh machine: `make run` (embedded: SQLite, eager Celery, console e-mail) and `make test`.
# `make up` runs the production topology (gunicorn, Celery worker and beat) against DATABASE_URL and REDIS_URL.

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
# FHFA's county limits, shipped in the project (a data migration loads them too); point it at a newer file.
LOAN_LIMITS_FILE ?= leads/data/fhfa-conforming-loan-limits-2026.psv
export LOAN_LIMITS_FILE

.PHONY: run test test-all up bench lint security format migrate seed clean

$(VENV)/.runtime: requirements.txt
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is required (set PYTHON=python3.11)")'
	test -d $(VENV) || $(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -r requirements.txt
	touch $@

$(VENV)/.dev: $(VENV)/.runtime requirements-dev.txt
	$(VENV)/bin/pip install --quiet -r requirements-dev.txt
	touch $@

run: $(VENV)/.runtime
	DEBUG=1 $(PY) manage.py migrate --noinput
	DEBUG=1 $(PY) manage.py import_loan_limits "$(LOAN_LIMITS_FILE)"
	DEBUG=1 $(PY) manage.py seed_demo
	@echo ""
	@echo "  Lead Market is at http://127.0.0.1:8000  (portal: /portal/, staff: /admin/)"
	@echo "  Demo logins, password demo-pass-123: admin (staff), lender1, lender2, lender3 (lender owners)"
	@echo ""
	DEBUG=1 $(PY) manage.py runserver 127.0.0.1:8000

# pytest-xdist, one process per core (each gets its own test database from pytest-django); the topology
# tests share one process (loadgroup), so two stacks of real processes never compete. `make test` leaves out
# the tests marked slow (real processes, browsers, fuzzing); `make test-all` (CI) runs everything.
# PYTEST_XDIST= runs in one process.
PYTEST_XDIST ?= -n auto --dist loadgroup

test: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_XDIST) -m "not slow" $(PYTEST_ARGS)

test-all: $(VENV)/.dev
	$(PY) -m pytest $(PYTEST_XDIST) $(PYTEST_ARGS)

lint: $(VENV)/.dev
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	DEBUG=1 $(VENV)/bin/mypy  # the apps, with django-stubs and djangorestframework-stubs (pyproject.toml)

# Security lint: any finding of high severity fails (CI runs this).
security: $(VENV)/.dev
	$(VENV)/bin/bandit -q -r . -x ./.venv,./node_modules --severity-level high

format: $(VENV)/.dev
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

up: $(VENV)/.runtime
	@test -n "$$DATABASE_URL" || (echo "Set DATABASE_URL (e.g. postgres://postgres@127.0.0.1:5432/leadmarket)"; exit 1)
	@test -n "$$REDIS_URL" || (echo "Set REDIS_URL (e.g. redis://127.0.0.1:6379/0)"; exit 1)
	$(PY) manage.py migrate --noinput
	$(PY) manage.py collectstatic --noinput --verbosity 0
	$(PY) manage.py import_loan_limits "$(LOAN_LIMITS_FILE)"
	$(VENV)/bin/honcho start -f Procfile

bench: $(VENV)/.dev
	$(PY) bench/engine.py
	$(PY) bench/distribution.py
	$(PY) bench/e2e.py
	$(PY) bench/reads.py  # the reading side (issue 14): builds its data set once, in its own database

clean:
	rm -rf $(VENV) db.sqlite3 staticfiles
