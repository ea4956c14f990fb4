#!/usr/bin/env bash
# Create ./.venv with the pinned stack if it is missing or a pin in requirements.txt changed. Idempotent.
# Needs Python 3.11 and pip (reaches PyPI). Prints the venv's python path on the last line.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="$root/.venv"
stamp="$venv/.requirements.sha256"
# The stamp hashes the requirement lines only: editing a comment does not re-install.
want="$(sed -e 's/#.*//' -e 's/[[:space:]]*$//' "$root/requirements.txt" | grep -v '^$' | sha256sum | cut -d' ' -f1)"

pick_python() {
  for py in "${PYTHON:-}" python3.11 python3; do
    [ -n "$py" ] || continue
    if command -v "$py" >/dev/null 2>&1 && "$py" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
      echo "$py"; return 0
    fi
  done
  echo "ensure_env: Python 3.11 is required (set PYTHON=/path/to/python3.11)" >&2
  return 1
}

if [ ! -x "$venv/bin/python" ]; then
  py="$(pick_python)"
  echo "ensure_env: creating $venv with $($py --version)" >&2
  "$py" -m venv "$venv"
fi
if [ ! -f "$stamp" ] || [ "$(cat "$stamp")" != "$want" ]; then
  echo "ensure_env: installing pinned requirements (about 2 minutes on a fresh machine)" >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check --upgrade pip >&2
  "$venv/bin/python" -m pip install -q --disable-pip-version-check -r "$root/requirements.txt" >&2
  echo "$want" > "$stamp"
fi
echo "$venv/bin/python"
