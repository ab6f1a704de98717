#!/usr/bin/env bash
# Set up (idempotently) and run the lint and the test suite. Extra arguments go to pytest,
# e.g. `scripts/test.sh -m slow` for the long calibration checks.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh test
.venv/bin/ruff check app tests
exec .venv/bin/python -m pytest "$@"
