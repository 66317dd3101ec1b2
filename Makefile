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

# The tests that touch media bytes, run again with media in an S3 bucket (a moto server
# the tests start on loopback): `make test-s3`.
S3_TESTS = tests/test_media_upload.py tests/test_media_serving.py tests/test_media_erasure.py \
	tests/test_media_sweep.py tests/test_media_disk.py tests/test_media_store.py \
	tests/test_sync_uploads.py tests/test_trust_export.py tests/test_retention_records.py

.PHONY: run test test-s3 audit fuzz bench clean chromium

$(INSTALLED): pyproject.toml
	$(PYTHON) -c 'import sys; sys.exit("childvoice needs Python 3.11 or newer") if sys.version_info < (3, 11) else None'
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(INSTALLED)

run: $(INSTALLED)
	$(BIN)/childvoice demo
	$(BIN)/childvoice serve --host $(HOST) --port $(PORT)

# The page and tablet tests drive Debian's Chromium (never a browser build downloaded by a
# test tool). As root on Debian it is installed when missing; elsewhere, say how.
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then \
	    echo "installing Chromium for the browser tests (Debian's package)"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
	      chromium fonts-dejavu-core libpango-1.0-0 libpangoft2-1.0-0 >/dev/null; \
	  else \
	    echo "The browser tests need Chromium: sudo apt-get install chromium" >&2; exit 1; \
	  fi; }

test: $(INSTALLED) chromium
	$(BIN)/python -m pytest -q

test-s3: $(INSTALLED)
	CHILDVOICE_TEST_MEDIA_STORE=s3 $(BIN)/python -m pytest -q $(S3_TESTS) \
		$(if $(findstring postgresql,$(CHILDVOICE_TEST_DATABASE_URL)),tests/test_restore_postgres.py)

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
	$(BIN)/python bench/pages.py

clean:
	rm -rf $(VENV) data .pytest_cache tests/oidc/node_modules
