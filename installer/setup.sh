#!/usr/bin/env bash
# Install TextPromptIR: the environment in ./.venv, the Krita and GIMP plugins,
# and a check that restores the shipped sample (astronaut-restored.png).
#
#   bash installer/setup.sh              # install or repair, then verify
#   bash installer/setup.sh --uninstall  # remove exactly what it added
#   bash installer/setup.sh --help       # more options
#
# This wrapper only finds a Python 3.10+; installer/install.py does the work.
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
for candidate in "${PYTHON:-}" python3 python3.13 python3.12 python3.11 python3.10; do
    if [ -n "$candidate" ] && "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 10))' 2>/dev/null; then
        exec "$candidate" "$root/installer/install.py" "$@"
    fi
done
echo "TextPromptIR needs Python 3.10 or newer, and none was found. Install one (python.org or your" >&2
echo "package manager), or point to it: PYTHON=/path/to/python3 bash installer/setup.sh" >&2
exit 1
