#!/usr/bin/env bash
# `npm run quickstart`: installs what it needs, then runs scripts/quickstart.ts (see there).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/node-env.sh
bash scripts/install-deps.sh
exec node scripts/quickstart.ts "$@"
