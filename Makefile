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
	$(BIN)/python -m pytest -q

bench: $(STAMP)
	$(BIN)/python bench/resolve.py
	$(BIN)/python bench/swap.py
	$(BIN)/python bench/console.py
	$(BIN)/python bench/cli_host.py

screenshots: $(STAMP)
	$(BIN)/python screenshots/make_screenshots.py

clean:
	rm -rf $(VENV) .oneiric .pytest_cache
