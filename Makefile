# The two commands: `make run` and `make test`. Everything else supports them.
VENV    := .venv
PYTHON  := $(VENV)/bin/python
FLASK   := $(VENV)/bin/flask --app loyalty
PORT    ?= 5000
SUDO    := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Every link the demo prints or emails points at the port it is served on.
WITH_URL = LOYALTY_BASE_URL=$${LOYALTY_BASE_URL:-http://127.0.0.1:$(PORT)}

.PHONY: install run test lint format browser bench clean constraints

install: $(VENV)/.installed  ## create .venv with the project and its dev tools

$(VENV)/.installed: pyproject.toml constraints.txt
	python3 -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --upgrade pip
	$(VENV)/bin/pip install --quiet -c constraints.txt -e '.[dev]'
	touch $@

constraints:  ## pin what is installed now as what CI tests (after a deliberate upgrade)
	{ echo "# What CI tested: \`make install\` installs with these (pip -c constraints.txt)."; \
	  echo "# Refresh deliberately: make constraints (then run make test and commit both)."; \
	  $(VENV)/bin/pip freeze --exclude-editable | grep -v '^loyalty'; } > constraints.txt

run: install  ## migrate, seed demo data when empty, print a login and a survey link, serve
	$(FLASK) db upgrade
	$(WITH_URL) $(FLASK) demo seed --if-empty
	$(WITH_URL) $(FLASK) demo info
	$(WITH_URL) $(FLASK) run --port $(PORT)

browser:  ## Debian's Chromium for the browser tests (test tools cannot download browsers here)
	@command -v chromium >/dev/null || { $(SUDO) apt-get update -q && \
		$(SUDO) DEBIAN_FRONTEND=noninteractive apt-get install -y -q chromium; }

lint: install  ## ruff, the import contracts (layers, pure core) and mypy
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/mypy

format: install
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

test: install browser lint  ## the whole suite with branch coverage (at least 90 %); set LOYALTY_TEST_DATABASE_URL for PostgreSQL
	$(PYTHON) -m coverage run -m pytest
	$(PYTHON) -m coverage report

bench: install  ## benchmark scripts; each prints its figures, last line JSON
	for script in tests/benchmarks/bench_*.py; do $(PYTHON) $$script || exit 1; done

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache .mypy_cache .coverage *.egg-info
