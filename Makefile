# Two commands: `make book` and `make test`. Both set up .venv first and are
# idempotent: the environment is rebuilt only when requirements.txt or
# pyproject.toml change.
PYTHON ?= python3
VENV   ?= .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.lcmae-installed
export HF_HUB_OFFLINE ?= 1
export MPLBACKEND ?= Agg

.PHONY: venv test book clean

venv: $(STAMP)

$(STAMP): requirements.txt pyproject.toml
	@test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -r requirements.txt
	$(PY) -m pip install -q --no-deps -e .
	$(PY) -m ipykernel install --sys-prefix --name python3 >/dev/null
	@touch $@

test: venv
	$(PY) -m pytest -q

book: venv
	$(VENV)/bin/jupyter-book build . -W -n --keep-going --all

clean:
	rm -rf _build .pytest_cache
