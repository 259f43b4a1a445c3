#!/usr/bin/env bash
# The project's test command (`npm test`): installs what it needs, checks types and lint, then runs
# every test — unit and integration — against a real Elasticsearch that it starts and always stops.
# Set ES_URL to run the integration tests against a cluster of your own instead.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
source scripts/node-env.sh
bash scripts/install-deps.sh
bash scripts/install-system-deps.sh

echo "ci-audit test: node $(node --version), npm $(npm --version)"
echo "ci-audit test: type check"
npx --no-install tsc --noEmit -p tsconfig.json
echo "ci-audit test: lint"
npx --no-install eslint .

# Test files are TypeScript that Node runs directly; integration tests read ES_URL.
# File-realm users with the roles of deploy/elasticsearch/ (test/integration/storage/least-privilege.test.ts).
export CI_AUDIT_ES_SECURITY_FILE="${CI_AUDIT_ES_SECURITY_FILE:-test/fixtures/elasticsearch-security.json}"
node scripts/elasticsearch.ts run -- \
  node --test --test-reporter=spec --test-concurrency=1 --test-timeout=600000 \
  'test/unit/**/*.test.ts' 'test/integration/**/*.test.ts' 'test/faults/**/*.test.ts' "$@"
