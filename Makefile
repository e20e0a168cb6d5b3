# Two commands do all set-up on a fresh machine:
#   make bench   install everything, then benchmark the default model on every available unit
#   make test    install everything, then run the test suite
VENV ?= .venv
STAMP := $(VENV)/.siliconlab-installed

.PHONY: install bench test lint

$(STAMP): pyproject.toml scripts/install.sh
	bash scripts/install.sh $(VENV)
	touch $(STAMP)

install: $(STAMP)

bench: $(STAMP)
	$(VENV)/bin/siliconlab bench

test: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/mypy
	$(VENV)/bin/python -m pytest -q

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests
	$(VENV)/bin/ruff format --check src tests
