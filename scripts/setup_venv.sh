#!/usr/bin/env bash
# Create (or reuse) .venv in the project root and install openretina into it.
# Torch goes in first, on its own: a bare `torch` requirement can pull a multi-GB CUDA build.
# On a machine without an NVIDIA GPU we ask for a CPU build.
set -euo pipefail
cd "$(dirname "$0")/.."
EXTRAS="${1:-dev}"
PYTHON="${PYTHON:-python3}"
TORCH_VERSION="${OPENRETINA_TORCH_VERSION:-2.13.0}"

if [ ! -x .venv/bin/python ]; then
    "$PYTHON" -m venv .venv
fi
PIP=(.venv/bin/python -m pip --disable-pip-version-check -q)

if ! .venv/bin/python -c "import torch" 2>/dev/null; then
    if command -v nvidia-smi >/dev/null 2>&1 && nvidia-smi >/dev/null 2>&1; then
        "${PIP[@]}" install "torch==${TORCH_VERSION}" || "${PIP[@]}" install "torch>=2.4"
    else
        # A local CPU wheel (pip's find-links) or the PyTorch CPU index.
        "${PIP[@]}" install "torch==${TORCH_VERSION}" \
            || "${PIP[@]}" install "torch>=2.4" --index-url https://download.pytorch.org/whl/cpu
    fi
fi

stamp=".venv/.openretina-installed-${EXTRAS//,/_}"
if [ ! -f "$stamp" ] || [ pyproject.toml -nt "$stamp" ]; then
    "${PIP[@]}" install -e ".[${EXTRAS}]"
    touch "$stamp"
fi
