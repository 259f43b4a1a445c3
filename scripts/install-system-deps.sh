#!/usr/bin/env bash
# Debian packages the tests need beyond what a machine of this kind ships:
# - systemd-journal-remote: the journald tests write real journal files with it, then read them
#   with the real journalctl.
# Installs only what is missing, and only as root (a developer without root installs them once).
set -euo pipefail
missing=()
[ -x /usr/lib/systemd/systemd-journal-remote ] || [ -x /lib/systemd/systemd-journal-remote ] || missing+=(systemd-journal-remote)
command -v journalctl >/dev/null 2>&1 || missing+=(systemd)
[ ${#missing[@]} -eq 0 ] && exit 0
if [ "$(id -u)" -ne 0 ]; then
  echo "ci-audit: the tests need these Debian packages: ${missing[*]} (apt-get install ${missing[*]})" >&2
  exit 1
fi
echo "ci-audit: installing Debian packages: ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
apt-get update -qq
apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
