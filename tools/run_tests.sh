#!/usr/bin/env bash
# Set up (if needed) and run the test suite: the command CI runs.
set -euo pipefail
cd "$(dirname "$0")/.."
bash tools/setup_env.sh
exec .venv/bin/python -m pytest -q "$@"
