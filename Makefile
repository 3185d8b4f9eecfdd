# Two commands: `make book` and `make test`. Both set up .venv first and are
# idempotent: the environment is rebuilt only when requirements.txt or
# pyproject.toml change.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lcmae-installed
export HF_HUB_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: venv browser test book clean

venv: $(STAMP)

# headless Chromium, for the test that opens the built book (Debian's package; needs root or sudo)
browser:
	@command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 || { \
	  SUDO=$$( [ "$$(id -u)" = 0 ] || echo sudo ); \
	  $$SUDO apt-get update -qq && $$SUDO apt-get install -y -qq chromium >/dev/null; }

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

# the test files are shared out over the cores, a file to a worker (its module fixtures are built once), the
# heaviest first (tests/conftest.py)
test: venv browser
	$(PY) -m pytest -q -n auto --dist loadfile --no-loadscope-reorder

book: venv
	$(PY) -m lcmae_core.build --scale cpu

clean:
	rm -rf _build .pytest_cache
