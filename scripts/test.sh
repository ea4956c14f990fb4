#!/usr/bin/env bash
# Create the environment if missing, then run the whole test suite. Extra args go to pytest.
# Test files run in parallel over INFNET_TEST_WORKERS processes (default 2, one per core of a CI machine;
# a file's tests stay in one process, so its module fixtures are built once); 0 runs in this process.
set -euo pipefail
root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
py="$(bash "$root/scripts/ensure_env.sh" | tail -n 1)"
cd "$root"
workers="${INFNET_TEST_WORKERS:-2}"
if [ "$workers" = "0" ]; then
  exec "$py" -m pytest "$@"
fi
exec "$py" -m pytest -n "$workers" --dist loadfile "$@"
