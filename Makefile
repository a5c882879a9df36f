# The two commands a newcomer needs: `make run` and `make test`.
# Both create .venv and install the project on first use; the stamp file makes
# the second run skip the install unless pyproject.toml changed.

PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: run test bench screenshots clean

$(STAMP): pyproject.toml
	@$(PYTHON) -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "Python 3.11 or newer is needed (found " + sys.version.split()[0] + ")")'
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --disable-pip-version-check -e '.[dev]'
	@touch $(STAMP)

run: $(STAMP)
	$(BIN)/oneiric --settings settings console

test: $(STAMP)
	$(BIN)/python -m pytest -q -n 2 --dist loadfile

# Every benchmark with --check: a target missed fails `make bench` (after all of them ran).
BENCHES := resolve swap console console_scale cli_host cli_startup cold_start journal_append prune status_json store_pg fleet_push rollout fleet_view

bench: $(STAMP)
	@failed=""; for b in $(BENCHES); do echo "== bench/$$b.py"; $(BIN)/python bench/$$b.py --check || failed="$$failed $$b"; \
	done; if [ -n "$$failed" ]; then echo "make bench: FAIL in:$$failed"; exit 1; fi

screenshots: $(STAMP)
	$(BIN)/python screenshots/make_screenshots.py

clean:
	rm -rf $(VENV) .oneiric .pytest_cache
