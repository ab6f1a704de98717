#!/usr/bin/env bash
# Set up (idempotently), then lint, check formatting and types, and run the test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m slow` for the long calibration checks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff check headstart tests
.venv/bin/ruff format --check headstart tests
.venv/bin/mypy  # strict on headstart/ (pyproject.toml)
.venv/bin/lint-imports  # the layers and forbidden imports (pyproject.toml, [tool.importlinter])
exec .venv/bin/python -m pytest "$@"
