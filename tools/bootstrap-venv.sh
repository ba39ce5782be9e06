#!/usr/bin/env bash
# Create .venv with Python 3.10 and the pinned dependencies (requirements.lock).
# nnabla 1.39 ships wheels only for CPython 3.8-3.10, so 3.10 is required.
set -euo pipefail
cd "$(dirname "$0")/.."
VENV=${VENV:-.venv}

find_python() {
    if [ -n "${PYTHON:-}" ]; then echo "$PYTHON"; return 0; fi
    if command -v python3.10 >/dev/null 2>&1 && python3.10 -c 'import sys; assert sys.version_info[:2] == (3, 10)' 2>/dev/null; then
        command -v python3.10; return 0
    fi
    for p in "$HOME"/.pyenv/versions/3.10*/bin/python3.10; do
        if [ -x "$p" ]; then echo "$p"; return 0; fi
    done
    return 1
}

if ! PY=$(find_python); then
    echo "error: Python 3.10 not found (looked at \$PYTHON, python3.10 on PATH, ~/.pyenv/versions/3.10*)." >&2
    echo "       nnabla 1.39 needs CPython 3.8-3.10. Install one, e.g. 'apt-get install python3.10 python3.10-venv'" >&2
    echo "       or 'pyenv install 3.10', or point PYTHON=/path/to/python3.10 at it, then re-run make." >&2
    exit 2
fi
echo "bootstrap: using $PY ($("$PY" --version 2>&1))"
rm -rf "$VENV"
"$PY" -m venv "$VENV"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --upgrade "pip>=23" "setuptools>=68" wheel
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.lock
# The converter's declared dependencies include TensorFlow; we only use its NNP -> ONNX exporter.
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps nnabla-converter==1.39.0
# nnabla-nas 0.15.0 for the tests against the real client (issue 15): --no-deps, plus only what
# importing its mobilenet space and LatencyEstimator needs (see requirements-nnabla-nas.lock).
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -r requirements-nnabla-nas.lock
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps nnabla-nas==0.15.0
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e .
touch "$VENV/.installed"
echo "bootstrap: $VENV ready"
