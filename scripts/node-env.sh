#!/usr/bin/env bash
# Sourced by the project's scripts: puts a Node.js >= 22 first on PATH.
# The system's node is used when it is recent enough; otherwise Node.js from the npm registry's
# `node` package (which ships the binary) is installed into .tools/node of this checkout. The
# system's node is never replaced or modified: only this shell's PATH changes.
ci_audit_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
ci_audit_node_version="${CI_AUDIT_NODE_VERSION:-24.21.0}"   # pinned: Node.js 24 LTS
ci_audit_node_dir="$ci_audit_root/.tools/node"

ci_audit_node_major() { "$1" -p 'process.versions.node.split(".")[0]' 2>/dev/null || echo 0; }

if [ -x "$ci_audit_node_dir/bin/node" ] && [ "$("$ci_audit_node_dir/bin/node" --version)" = "v$ci_audit_node_version" ]; then
  export PATH="$ci_audit_node_dir/bin:$PATH"
elif command -v node >/dev/null 2>&1 && [ "$(ci_audit_node_major node)" -ge 22 ] && [ -z "${CI_AUDIT_FORCE_NODE:-}" ]; then
  : # the system's node is recent enough
else
  echo "ci-audit: provisioning Node.js $ci_audit_node_version into .tools/node (system node: $(node --version 2>/dev/null || echo none))" >&2
  command -v npm >/dev/null 2>&1 || { echo "ci-audit: npm is needed to provision Node.js; install npm first" >&2; exit 1; }
  ci_audit_tmp="$(mktemp -d)"
  # The `node` package downloads node-<os>-<arch> from the same registry in its preinstall script.
  if ! npm install --no-save --no-audit --no-fund --loglevel=error --prefix "$ci_audit_tmp" "node@$ci_audit_node_version" >&2; then
    rm -rf "$ci_audit_tmp"; echo "ci-audit: could not install node@$ci_audit_node_version from the npm registry" >&2; exit 1
  fi
  rm -rf "$ci_audit_node_dir"; mkdir -p "$ci_audit_node_dir/bin"
  cp "$(readlink -f "$ci_audit_tmp/node_modules/node/bin/node")" "$ci_audit_node_dir/bin/node"
  rm -rf "$ci_audit_tmp"
  "$ci_audit_node_dir/bin/node" --version >/dev/null || { echo "ci-audit: the provisioned node does not run" >&2; exit 1; }
  export PATH="$ci_audit_node_dir/bin:$PATH"
fi
