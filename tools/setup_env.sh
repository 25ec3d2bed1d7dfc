#!/usr/bin/env bash
# Create .venv (if missing) and install mmflux with its pinned stack, from this repo's files only.
set -euo pipefail
cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  echo "[setup] creating .venv with $($PYTHON --version)"
  "$PYTHON" -m venv .venv
fi
stamp=.venv/.mmflux-requirements
if [ ! -f "$stamp" ] || ! cmp -s requirements.txt "$stamp"; then
  echo "[setup] installing pinned requirements (torch, mmaction2, ...): a few minutes on first run"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements.txt
  cp requirements.txt "$stamp"
fi
# optional deployment runtimes (ONNX Runtime, OpenVINO), with numpy pinned in the same command;
# MMFLUX_DEPLOY=0 skips them
deploy_stamp=.venv/.mmflux-deploy-requirements
if [ "${MMFLUX_DEPLOY:-1}" != "0" ] && { [ ! -f "$deploy_stamp" ] || ! cmp -s requirements/deploy.txt "$deploy_stamp"; }; then
  echo "[setup] installing the deployment runtimes (requirements/deploy.txt)"
  .venv/bin/python -m pip install --quiet --disable-pip-version-check -r requirements/deploy.txt
  cp requirements/deploy.txt "$deploy_stamp"
fi
# check from outside the repo: inside it, the current folder would hide a missing install
repo=$(pwd)
if ! (cd / && "$repo/.venv/bin/python" -c "import mmflux") >/dev/null 2>&1; then
  .venv/bin/python -m pip install --quiet --disable-pip-version-check --no-build-isolation --no-deps -e .
fi
.venv/bin/python -c "import mmflux, torch, mmaction; print('[setup] mmflux', mmflux.__version__, '| torch', torch.__version__, '| mmaction2', mmaction.__version__)" 2>/dev/null
