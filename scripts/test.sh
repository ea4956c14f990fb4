#!/usr/bin/env bash
# Create the environment if missing, then run the whole test suite. Extra args go to pytest.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$root/scripts/ensure_env.sh" | tail -n 1)"
cd "$root"
exec "$py" -m pytest "$@"
