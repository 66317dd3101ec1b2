# Two commands do all the set-up on a fresh clone:
#   make run    install, migrate, load synthetic demo data, serve on http://127.0.0.1:8000
#   make test   install, then run the whole test suite (SQLite unless
#               CHILDVOICE_TEST_DATABASE_URL names a PostgreSQL database)

PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
INSTALLED = $(VENV)/.installed
HOST ?= 127.0.0.1
PORT ?= 8000

.PHONY: run test audit fuzz bench clean

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("childvoice needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/childvoice demo
	$(BIN)/childvoice serve --host $(HOST) --port $(PORT)

test: $(INSTALLED)
	$(BIN)/python -m pytest -q

# Says how many packages were really checked: a mirror without vulnerability data, or no
# network, is reported as such, never as "no known vulnerabilities".
audit: $(INSTALLED)
	$(BIN)/python scripts/audit.py

# Schemathesis over /openapi.json as worker, manager, admin and capture token, longer than
# the short run in the test suite (set CHILDVOICE_TEST_DATABASE_URL for PostgreSQL).
FUZZ_EXAMPLES ?= 50
FUZZ_SECONDS ?= 600
fuzz: $(INSTALLED)
	CHILDVOICE_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) CHILDVOICE_FUZZ_SECONDS=$(FUZZ_SECONDS) \
		$(BIN)/python -m pytest -q tests/test_fuzz.py

bench: $(INSTALLED)
	$(BIN)/python bench/capture.py
	$(BIN)/python bench/media.py
	$(BIN)/python bench/sync.py

clean:
	rm -rf $(VENV) data .pytest_cache
