# opsledger: one command to set everything up and run the demo, one to run the whole test suite.
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin

.PHONY: setup demo test lint typecheck migrations-check clean

$(BIN)/opsledger: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(BIN)/opsledger

setup: $(BIN)/opsledger

demo: setup
	$(BIN)/opsledger demo

test: setup lint typecheck migrations-check
	$(BIN)/pytest -q

lint: setup
	$(BIN)/ruff check src tests bench

typecheck: setup
	$(BIN)/mypy src

# The models and the migrations agree (on a scratch SQLite database).
migrations-check: setup
	rm -f .alembic-check.db
	OPSLEDGER_DATABASE_URL=sqlite:///.alembic-check.db $(BIN)/alembic upgrade head
	OPSLEDGER_DATABASE_URL=sqlite:///.alembic-check.db $(BIN)/alembic check
	rm -f .alembic-check.db

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache .hypothesis
