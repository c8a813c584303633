#!/usr/bin/env bash
# One entry point for a fresh machine:  ./dev.sh demo  |  ./dev.sh test  |  ./dev.sh setup  |  ./dev.sh bench
# Every command first sets everything up: a virtual environment in .venv, PyTorch's CPU wheel and
# gankit itself. Set-up is skipped when nothing it depends on changed, so a second run is fast.
set -euo pipefail
cd "$(dirname "$0")"

PYTHON=${PYTHON:-python3}
VENV=.venv
# The CPU build: an unpinned `torch` pulls a multi-GB CUDA build on a CPU-only machine.
# On a GPU machine, e.g.: TORCH_SPEC="torch==2.13.0" ./dev.sh setup (whatever build its pip finds).
TORCH_SPEC=${TORCH_SPEC:-torch==2.13.0}
STAMP=$VENV/.installed

setup() {
    local want
    want=$(cat pyproject.toml dev.sh | sha256sum | cut -d' ' -f1)-$TORCH_SPEC
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/gankit" ]; then
        return
    fi
    echo "dev.sh: setting up $VENV (PyTorch: $TORCH_SPEC)" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev]"
    echo "$want" > "$STAMP"
}

case "${1:-}" in
    setup) setup ;;
    demo) setup; shift; exec "$VENV/bin/gankit" demo "$@" ;;
    test) setup; shift; exec "$VENV/bin/python" -m pytest -q "$@" ;;
    bench) setup; shift; exec "$VENV/bin/python" bench/quality.py "$@" ;;
    *) echo "usage: ./dev.sh demo|test|setup|bench [args...]" >&2; exit 2 ;;
esac
