#!/usr/bin/env bash
# Set up (idempotently) and serve Headstart on its embedded default: Fashion-MNIST and the
# shipped checkpoint. Extra arguments go to `python -m headstart serve` (e.g. --host 0.0.0.0).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh serve
exec .venv/bin/python -m headstart serve "$@"
