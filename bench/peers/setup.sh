#!/usr/bin/env bash
# Creates bench/peers/.venv with FastStream for `brokerkit-bench --peer faststream`.
# PYTHON picks the interpreter (default python3.11, else python3; FastStream needs >= 3.10).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"
python=${PYTHON:-$(command -v python3.11 || command -v python3)}
[ -x .venv/bin/python ] || "$python" -m venv .venv
.venv/bin/python -m pip install --quiet --upgrade pip
.venv/bin/python -m pip install --quiet -r requirements.txt
.venv/bin/python -c 'from importlib.metadata import version; print("bench/peers/.venv: faststream", version("faststream"))'
