#!/usr/bin/env bash
# Installs the locked dependencies when node_modules is missing or older than package-lock.json.
# Expects scripts/node-env.sh to have been sourced (Node >= 22 on PATH).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
stamp=node_modules/.package-lock.json
if [ ! -f "$stamp" ] || [ package-lock.json -nt "$stamp" ]; then
  echo "ci-audit: installing dependencies (npm ci)"
  npm ci --no-audit --no-fund --loglevel=error
fi
