# Two commands on a fresh machine (Python 3.11, Node.js, make): `make demo` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
PY_STAMP   := $(VENV)/.installed
NODE_STAMP := node_modules/.installed

.PHONY: install demo test bench lock schema golden clean

CONTRACTS := build/contracts/StewardGovernor.json
install: $(PY_STAMP) $(NODE_STAMP) $(CONTRACTS)

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

# Pinned: every package comes from requirements.lock (regenerate with `make lock`).
$(PY_STAMP): pyproject.toml requirements.lock | $(BIN)/python
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c requirements.lock -e '.[dev,ray]'
	touch $@

# Dev tools from npm (anvil, solc, contract artifacts): exact versions in package.json, tree in
# package-lock.json. `npm ci` is not used: with this registry set-up (omit-lockfile-registry-resolved)
# the lock has no entries for other platforms' optional anvil binaries, which `npm ci` rejects.
$(NODE_STAMP): package.json package-lock.json
	npm install --no-audit --no-fund --loglevel=error
	touch $@

CHROMIUM := /usr/bin/chromium
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
# Headless Chromium from Debian for the report's browser test (only when missing).
$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium

# The devnet's Governor, Timelock and ERC20Votes: @openzeppelin/contracts compiled with npm solc
# (the devnet also compiles on demand when build/ is missing).
$(CONTRACTS): governance/contracts/*.sol governance/contracts/compile.mjs governance/compile.py package-lock.json $(NODE_STAMP) | $(PY_STAMP)
	$(BIN)/python -m governance.compile
	touch $@

demo: install
	$(BIN)/steward demo

test: install $(CHROMIUM)
	$(BIN)/lint-imports --no-cache
	$(BIN)/ruff check governance risk tests benchmarks
	$(BIN)/python -m pytest -q -n 2 --durations=25

bench: install
	$(BIN)/python -m benchmarks.run

# Regenerate policies/schema.json from the pydantic models (a test keeps it in sync).
schema: install
	$(BIN)/steward schema > policies/schema.json

# Refresh golden files after reviewing the diff (`git diff tests/golden proposals/`).
golden: install
	$(BIN)/python -m pytest -q tests/golden --update-golden

lock: $(BIN)/python
	$(BIN)/python -m pip install --quiet -e '.[dev,ray]'
	$(BIN)/python -m pip freeze --exclude-editable | grep -v '^steward' > requirements.lock

clean:
	rm -rf $(VENV) node_modules build
