#!/usr/bin/env bash
# Installs, upgrades or uninstalls the ci-audit agent on a build runner: one command, no questions,
# safe to run again. See docs/install.md.
#
#   deploy/install.sh [install|upgrade|uninstall] [options]
#
# What `install` leaves behind (paths below the root; see "Ownership" in docs/install.md):
#   /opt/ci-audit/{app,node,bin,hooks}   the app, its Node.js, the wrapper, the job hook scripts  root 0755
#   /usr/bin/ci-audit                    symlink to /opt/ci-audit/bin/ci-audit
#   /etc/ci-audit/agent.yaml             from the runner's preset                    root:ci-audit 0640
#   /var/lib/ci-audit                    state: key, chain, checkpoints, buffer     ci-audit 0711
#   /var/lib/ci-audit/job-hooks          the hooks' spool (writable, not listable)  ci-audit 1733
#   /etc/systemd/system/ci-audit-agent.service                                       root 0644
#   /opt/ci-audit/install-manifest.tsv   every path with its mode and owner; uninstall reads it
#
# With DESTDIR (or --destdir) everything goes below that folder, users and groups are not created,
# files are chowned only to accounts that exist, and systemctl is not called: what would have been
# done is printed and kept in the manifest. By default the paths written into the configuration and
# the unit point below DESTDIR too, so the agent can run from there (tests, evaluation); --staging
# writes the final system paths instead (packaging).
set -euo pipefail
umask 022

usage() {
  cat <<'EOF'
usage: deploy/install.sh [install|upgrade|uninstall] [options]

  install     install (or repair) the agent and start it; an existing configuration is kept
  upgrade     replace the app and its Node.js, keep configuration, state and chain; restart
  uninstall   stop and remove the agent; keep state (key, chain, checkpoints) and configuration
              unless --purge
  render-config  print the agent.yaml the preset and options give, install nothing

options:
  --preset NAME             github-actions, gitlab, jenkins, buildkite or generic (default: generic)
  --aggregator-url URL      base URL of the aggregator's receiver (required for install)
  --agent-id ID             this agent's id (default: the host name)
  --runner-user USER        the account the CI jobs run as (default per preset: runner,
                            gitlab-runner, jenkins, buildkite-agent); it gets no access to the state
  --runner-uid UID          its uid, when the account does not exist here (DESTDIR)
  --runner-dir DIR          GitHub: the runner's folder (default /home/runner/actions-runner);
                            Jenkins: JENKINS_HOME or the agent's root (default /var/lib/jenkins)
  --ca-file FILE            PEM CA of the aggregator's certificate (copied to /etc/ci-audit/; https:// URL only)
  --enrollment-token-file F file holding an enrollment token (or set CI_AUDIT_ENROLLMENT_TOKEN)
  --http-port PORT          port of the agent's /healthz, /metrics and /status on 127.0.0.1 (8318)
  --agent-user USER         the agent's own system account (default ci-audit)
  --from DIR                the ci-audit checkout to install from (default: this script's)
  --node FILE               the Node.js (>= 22.18) binary to bundle (default: the checkout's
                            .tools/node/bin/node, else node on PATH)
  --destdir DIR             install below DIR (or DESTDIR=DIR); see the header of this script
  --staging                 with --destdir: write final system paths into config and unit
  --force-config            install: overwrite an existing agent.yaml with the preset
  --no-start                do not enable or start the service
  --purge                   uninstall: also remove state (key, chain, buffer) and configuration
  --dry-run                 print what would be done, change nothing
EOF
}

die() { echo "ci-audit install: error: $*" >&2; exit 1; }
note() { echo "ci-audit install: $*"; }

action=install
case "${1:-}" in install|upgrade|uninstall|render-config) action=$1; shift ;; esac

preset='' url='' agent_id='' runner_user='' runner_uid='' runner_dir='' ca_file='' token_file=''
http_port='' agent_user='' from='' node_bin='' destdir="${DESTDIR:-}" staging=0
force_config=0 start=1 purge=0 dry_run=0
while [ $# -gt 0 ]; do
  case "$1" in
    --preset) preset=$2; shift ;;
    --aggregator-url) url=$2; shift ;;
    --agent-id) agent_id=$2; shift ;;
    --runner-user) runner_user=$2; shift ;;
    --runner-uid) runner_uid=$2; shift ;;
    --runner-dir) runner_dir=$2; shift ;;
    --ca-file) ca_file=$2; shift ;;
    --enrollment-token-file) token_file=$2; shift ;;
    --http-port) http_port=$2; shift ;;
    --agent-user) agent_user=$2; shift ;;
    --from) from=$2; shift ;;
    --node) node_bin=$2; shift ;;
    --destdir) destdir=$2; shift ;;
    --staging) staging=1 ;;
    --force-config) force_config=1 ;;
    --no-start) start=0 ;;
    --purge) purge=1 ;;
    --dry-run) dry_run=1 ;;
    -h|--help) usage; exit 0 ;;
    *) usage >&2; die "unknown option $1" ;;
  esac
  shift
done

# What install chose is kept beside the app, so upgrade and uninstall act on the same setup.
SAVED=/opt/ci-audit/install.conf
saved() { # key: the value install saved, if any
  [ -f "${destdir%/}$SAVED" ] && sed -n "s/^$1=//p" "${destdir%/}$SAVED" | tail -n 1
}
if [ "$action" != install ] || [ -f "${destdir%/}$SAVED" ]; then
  : "${preset:=$(saved preset)}" "${agent_id:=$(saved agent_id)}" "${runner_user:=$(saved runner_user)}" \
    "${runner_uid:=$(saved runner_uid)}" "${runner_dir:=$(saved runner_dir)}" "${http_port:=$(saved http_port)}" \
    "${agent_user:=$(saved agent_user)}" "${url:=$(saved url)}"
fi
: "${preset:=generic}" "${http_port:=8318}" "${agent_user:=ci-audit}"

# D: where files are written. P: the prefix of the paths written into files (config, unit, links).
D=${destdir%/}
if [ -n "$D" ]; then
  [ "$dry_run" = 1 ] || mkdir -p "$D" || die "cannot create DESTDIR $D"
  [ "$dry_run" = 1 ] && [ ! -d "$D" ] || D=$(cd "$D" && pwd)
fi
P=$D; [ "$staging" = 1 ] && P=''
OPT=/opt/ci-audit CONF=/etc/ci-audit STATE=/var/lib/ci-audit UNITDIR=/etc/systemd/system
UNIT=ci-audit-agent.service BINLINK=/usr/bin/ci-audit
MANIFEST=$OPT/install-manifest.tsv
agent_group=$agent_user

# Real system changes (accounts, systemctl) happen only without DESTDIR.
system=1; [ -n "$D" ] && system=0
manifest_rows=()

# Runs a command, or prints it under --dry-run.
run() {
  if [ "$dry_run" = 1 ]; then echo "would run: $*"; else "$@"; fi
}
# A change to the system outside the file tree: done without DESTDIR, else printed and recorded.
system_run() {
  if [ "$system" = 1 ]; then run "$@"; else echo "skipped (DESTDIR): $*"; manifest_rows+=("action	$*	-	-	-"); fi
}
# Mode and owner of an installed path; the owner is recorded in the manifest even when it cannot
# be set (DESTDIR without that account).
own() { # kind path mode owner group
  local kind=$1 path=$2 mode=$3 owner=$4 group=$5
  manifest_rows+=("$kind	$path	$mode	$owner	$group")
  [ "$dry_run" = 1 ] && { echo "would set $path: mode $mode, owner $owner:$group"; return; }
  chmod "$mode" "$D$path"
  if [ "$(id -u)" = 0 ] && id -u "$owner" >/dev/null 2>&1 && getent group "$group" >/dev/null 2>&1; then
    chown -h "$owner:$group" "$D$path"
  fi
}
mkdir_own() { # kind path mode owner group
  run mkdir -p "$D$2"
  own "$@"
}

agent_bin() { "$D$OPT/bin/ci-audit" "$@"; }
# Runs the installed ci-audit as the agent's account when it exists (files it creates are its own).
as_agent() {
  if [ "$(id -u)" = 0 ] && [ "$(id -un)" != "$agent_user" ] && id -u "$agent_user" >/dev/null 2>&1; then
    setpriv --reuid="$agent_user" --regid="$agent_group" --init-groups "$D$OPT/bin/ci-audit" "$@"
  else
    agent_bin "$@"
  fi
}

service_active() { [ "$system" = 1 ] && command -v systemctl >/dev/null 2>&1 && [ -d /run/systemd/system ]; }

# ---------------------------------------------------------------------------------------- uninstall
uninstall() {
  local manifest=$D$MANIFEST
  [ -f "$manifest" ] || die "no installation found ($manifest is missing)"
  if service_active; then
    system_run systemctl disable --now "$UNIT"
  else
    echo "skipped (no systemd${D:+ under DESTDIR}): systemctl disable --now $UNIT"
  fi
  remove_runner_hooks
  # Files first, then folders deepest first; state and configuration stay unless --purge.
  local kind path rest dirs=()
  while IFS=$'\t' read -r kind path rest; do
    case "$kind" in
      app|unit|link|hook) ;;
      config|state) [ "$purge" = 1 ] || continue ;;
      *) continue ;;
    esac
    if [ -d "$D$path" ] && [ ! -L "$D$path" ]; then dirs+=("$path"); else run rm -f "$D$path"; fi
  done < "$manifest"
  local dir
  for dir in $(printf '%s\n' "${dirs[@]}" | awk '{ print length, $0 }' | sort -rn | cut -d' ' -f2-); do
    run rm -rf "${D:?}$dir"
  done
  [ "$purge" = 1 ] && [ -d "$D$STATE" ] && run rm -rf "${D:?}$STATE"
  [ "$purge" = 1 ] && [ -d "$D$CONF" ] && run rm -rf "${D:?}$CONF"
  run rm -rf "${D:?}$OPT"
  if service_active; then system_run systemctl daemon-reload; fi
  if [ "$purge" = 1 ]; then
    note "removed; the account $agent_user is kept (userdel $agent_user to remove it)"
  else
    note "removed; kept $STATE (signing key, chain, checkpoints, buffer) and $CONF for a reinstall (--purge removes them)"
  fi
}

# Lines this installer added to a runner's configuration carry this marker, so uninstall finds them.
MARK='# added by ci-audit install'

# Removes the marker and the lines naming our hook scripts from the runner configuration files
# the manifest lists.
remove_runner_hooks() {
  local kind path rest
  while IFS=$'\t' read -r kind path rest; do
    [ "$kind" = runnerconf ] && [ -f "$D$path" ] || continue
    if [ "$dry_run" = 1 ]; then echo "would remove ci-audit's lines from $path"; continue; fi
    sed -i -e "/$MARK/d" -e "\\|$P$OPT/hooks/job-|d" "$D$path"
  done < "$D$MANIFEST"
}

# ------------------------------------------------------------------------------------------ install
find_node() {
  local candidate
  for candidate in "$node_bin" "$src/.tools/node/bin/node" "$(command -v node || true)"; do
    [ -n "$candidate" ] && [ -x "$candidate" ] || continue
    if "$candidate" -e 'const [a, b] = process.versions.node.split(".").map(Number); process.exit(a > 22 || (a === 22 && b >= 18) ? 0 : 1)'; then
      echo "$candidate"; return
    fi
  done
  die "no Node.js >= 22.18 found; run 'source scripts/node-env.sh' in the checkout (it provisions Node.js 24) or give --node"
}

# The top-level folders under node_modules of the checkout's production dependencies.
production_packages() {
  (cd "$src" && npm ls --omit=dev --all --parseable 2>/dev/null) |
    awk -v root="$src/node_modules/" 'index($0, root) == 1 { rel = substr($0, length(root) + 1); if (rel !~ /\/node_modules\//) print rel }' |
    awk -F/ '{ if ($1 ~ /^@/) print $1 "/" $2; else print $1 }' | sort -u
}

install_app() {
  local stage="$D$OPT/app.new"
  run rm -rf "$stage"
  run mkdir -p "$stage"
  local item
  for item in bin cli agent aggregator admin core config package.json package-lock.json LICENSE README.md docs deploy/kibana deploy/elasticsearch; do
    [ -e "$src/$item" ] || continue
    run mkdir -p "$stage/$(dirname "$item")"
    run cp -R "$src/$item" "$stage/$item"
  done
  # Production dependencies only: copied from the checkout and pruned offline when it has them,
  # else installed from the lock file.
  if [ -d "$src/node_modules" ]; then
    # Only the production packages are copied (the checkout's dev tools stay behind), then pruned
    # against the lock file so that exactly the production tree remains.
    local pkg
    run mkdir -p "$stage/node_modules"
    while IFS= read -r pkg; do
      run mkdir -p "$stage/node_modules/$(dirname "$pkg")"
      run cp -R "$src/node_modules/$pkg" "$stage/node_modules/$pkg"
    done < <(production_packages)
    run npm prune --prefix "$stage" --omit=dev --offline --no-audit --no-fund --loglevel=error
  else
    run npm ci --prefix "$stage" --omit=dev --no-audit --no-fund --loglevel=error
  fi
  run rm -rf "$D$OPT/app"
  run mv "$stage" "$D$OPT/app"
  run mkdir -p "$D$OPT/node/bin"
  if ! cmp -s "$(readlink -f "$node")" "$D$OPT/node/bin/node"; then
    run cp "$(readlink -f "$node")" "$D$OPT/node/bin/node.new"
    run mv -f "$D$OPT/node/bin/node.new" "$D$OPT/node/bin/node"
  fi
  if [ "$dry_run" = 0 ]; then
    chmod -R u+rwX,go+rX,go-w "$D$OPT/app"
    (cd "$D$OPT/app" && "$D$OPT/node/bin/node" -p 'require("./package.json").version') > "$D$OPT/VERSION"
  fi
  own app "$OPT/app" 0755 root root
  own app "$OPT/node/bin/node" 0755 root root
  own app "$OPT/node/bin" 0755 root root
  own app "$OPT/node" 0755 root root
  [ "$dry_run" = 1 ] || own app "$OPT/VERSION" 0644 root root

  mkdir_own app "$OPT/bin" 0755 root root
  write_file app "$OPT/bin/ci-audit" 0755 root root <<'EOF'
#!/bin/sh
# ci-audit as installed by deploy/install.sh: the bundled Node.js runs the bundled app.
here=$(dirname "$(readlink -f "$0")")
exec "$here/../node/bin/node" "$here/../app/bin/ci-audit.js" "$@"
EOF
  mkdir_own hook "$OPT/hooks" 0755 root root
  local phase
  for phase in started completed; do
    write_file hook "$OPT/hooks/job-$phase" 0755 root root <<EOF
#!/bin/sh
# Job hook for runners that take a script (GitHub ACTIONS_RUNNER_HOOK_JOB_${phase^^}, Buildkite
# agent hooks): hands the job's context to the agent. Never fails the job (docs/runners.md).
exec "$P$OPT/bin/ci-audit" hook job-$phase --dir "$P$STATE/job-hooks" \${BUILDKITE_COMMAND_EXIT_STATUS:+--result "\$BUILDKITE_COMMAND_EXIT_STATUS"}
EOF
  done
  run mkdir -p "$D$(dirname "$BINLINK")"
  run ln -sfn "$P$OPT/bin/ci-audit" "$D$BINLINK"
  manifest_rows+=("link	$BINLINK	-	root	root")
}

# Writes stdin to a file under the root (atomically: temp file, then rename) and sets mode and owner.
write_file() { # kind path mode owner group
  local kind=$1 path=$2
  if [ "$dry_run" = 1 ]; then
    echo "would write $path"; cat > /dev/null
  else
    mkdir -p "$(dirname "$D$path")"
    cat > "$D$path.tmp.$$"
    chmod "$3" "$D$path.tmp.$$"
    mv -f "$D$path.tmp.$$" "$D$path"
  fi
  own "$kind" "$path" "$3" "$4" "$5"
}

create_accounts() {
  if id -u "$agent_user" >/dev/null 2>&1; then
    note "account $agent_user exists"
  else
    system_run useradd --system --user-group --no-create-home --home-dir "$STATE" --shell /usr/sbin/nologin \
      --comment 'ci-audit agent' "$agent_user"
  fi
  # Only the groups that may read logs: adm (/var/log/auth.log on Debian), systemd-journal (the journal).
  local group
  for group in adm systemd-journal; do
    if getent group "$group" >/dev/null 2>&1; then
      if id -nG "$agent_user" 2>/dev/null | tr ' ' '\n' | grep -qx "$group"; then continue; fi
      system_run usermod --append --groups "$group" "$agent_user"
    fi
  done
}

# The jobs' account must not get at the agent's key, state or config: refuse an install that would.
check_runner_user() {
  [ -n "$runner_user" ] || return 0
  if [ "$runner_user" = root ] || [ "$runner_user" = "$agent_user" ]; then
    die "--runner-user $runner_user: the jobs must not run as root or as the agent's account $agent_user"
  fi
  if id -nG "$runner_user" >/dev/null 2>&1 && id -nG "$runner_user" | tr ' ' '\n' | grep -qx "$agent_group"; then
    die "the runner's account $runner_user is in group $agent_group and could read the agent's configuration; remove it (gpasswd -d $runner_user $agent_group)"
  fi
}

render_config() {
  local template="$src/deploy/presets/$preset.yaml" tls='' ca_dest="$P$CONF/aggregator-ca.pem"
  [ -f "$template" ] || die "unknown preset $preset (presets: $(cd "$src/deploy/presets" && ls -- *.yaml | sed 's/\.yaml$//' | tr '\n' ' '))"
  [ -n "$ca_file" ] && tls="  tls:"$'\n'"    ca_file: $ca_dest"
  local escaped_tls=${tls//$'\n'/\\n}
  sed -e "s|@AGENT_ID@|$agent_id|g" -e "s|@STATE_DIR@|$P$STATE|g" -e "s|@ROOT@|$P|g" \
    -e "s|@RUNNER_DIR@|$P$runner_dir|g" -e "s|@RUNNER_UID@|$runner_uid|g" \
    -e "s|@AGGREGATOR_URL@|$url|g" -e "s|@HTTP_PORT@|$http_port|g" -e "s|^@TLS@$|$escaped_tls|" "$template" |
    sed -e '/^$/d'
}

install_config() {
  mkdir_own config "$CONF" 0750 root "$agent_group"
  if [ -n "$ca_file" ]; then
    [ -r "$ca_file" ] || die "cannot read --ca-file $ca_file"
    write_file config "$CONF/aggregator-ca.pem" 0644 root root < "$ca_file"
  fi
  local rendered
  rendered=$(render_config)
  if [ -f "$D$CONF/agent.yaml" ] && [ "$force_config" = 0 ]; then
    if [ "$rendered" != "$(cat "$D$CONF/agent.yaml")" ]; then
      note "kept the existing $CONF/agent.yaml (differs from the $preset preset; --force-config replaces it)"
    fi
    own config "$CONF/agent.yaml" 0640 root "$agent_group"
  else
    write_file config "$CONF/agent.yaml" 0640 root "$agent_group" <<< "$rendered"
  fi
}

install_state() {
  # 0711: the jobs can reach job-hooks/ but list and read nothing else; the agent's files are 0600.
  mkdir_own state "$STATE" 0711 "$agent_user" "$agent_group"
  mkdir_own state "$STATE/job-hooks" 1733 "$agent_user" "$agent_group"
  local name
  for name in signing-key.pem chain.json credentials.json; do
    [ -e "$D$STATE/$name" ] && own state "$STATE/$name" 0600 "$agent_user" "$agent_group"
  done
  for name in checkpoints buffer journal; do
    [ -d "$D$STATE/$name" ] && own state "$STATE/$name" 0700 "$agent_user" "$agent_group"
  done
  return 0
}

generate_key() {
  if [ -e "$D$STATE/signing-key.pem" ]; then note "signing key exists: $STATE/signing-key.pem (kept)"; return; fi
  if [ "$dry_run" = 1 ]; then echo "would run: ci-audit agent keygen --config $P$CONF/agent.yaml"; return; fi
  if ! agent_bin agent --help 2>/dev/null | grep -q '^  keygen'; then
    note "this version has no 'ci-audit agent keygen': no signing key generated (run it after an upgrade)"
    return
  fi
  as_agent agent keygen --config "$D$CONF/agent.yaml" ||
    die "could not create the signing key as $agent_user (see above); it must be able to reach $P$STATE"
  own state "$STATE/signing-key.pem" 0600 "$agent_user" "$agent_group"
}

enroll() {
  if [ -e "$D$STATE/credentials.json" ]; then note "already enrolled ($STATE/credentials.json kept)"; return; fi
  local token="${CI_AUDIT_ENROLLMENT_TOKEN:-}"
  [ -n "$token_file" ] && token=$(tr -d '[:space:]' < "$token_file")
  if [ -z "$token" ]; then
    note "no enrollment token given: enroll later with CI_AUDIT_ENROLLMENT_TOKEN=... $P$OPT/bin/ci-audit agent enroll --config $P$CONF/agent.yaml"
    return
  fi
  if [ "$dry_run" = 1 ]; then echo "would run: ci-audit agent enroll --config $P$CONF/agent.yaml"; return; fi
  # enroll registers the public half of the signing key with the credential.
  CI_AUDIT_ENROLLMENT_TOKEN=$token as_agent agent enroll --config "$D$CONF/agent.yaml" ||
    die "enrollment failed (see above); rerun when the aggregator is reachable"
  own state "$STATE/credentials.json" 0600 "$agent_user" "$agent_group"
}

install_unit() {
  local unit
  unit=$(sed -e "s|/opt/ci-audit|$P$OPT|g" -e "s|/etc/ci-audit|$P$CONF|g" -e "s|/var/lib/ci-audit|$P$STATE|g" \
    -e "s|^User=ci-audit$|User=$agent_user|" -e "s|^Group=ci-audit$|Group=$agent_group|" "$src/deploy/systemd/$UNIT")
  write_file unit "$UNITDIR/$UNIT" 0644 root root <<< "$unit"
}

# The job hooks go into the runner's configuration where it has a place for them; otherwise the
# one line to add is printed.
install_runner_hooks() {
  case "$preset" in
    github-actions)
      local env_file="$D$runner_dir/.env"
      # The runner's folder is usually private to its account: let the agent read its _diag logs
      # (and pass through the folders above), nothing else.
      if [ -d "$D$runner_dir/_diag" ] && command -v setfacl >/dev/null 2>&1; then
        local parent=$runner_dir
        while [ "$parent" != / ] && [ -n "$parent" ]; do
          system_run setfacl -m "u:$agent_user:x" "$P$parent"
          parent=$(dirname "$parent")
        done
        system_run setfacl -R -m "u:$agent_user:rX,d:u:$agent_user:rX" "$P$runner_dir/_diag"
      elif [ -d "$D$runner_dir/_diag" ]; then
        note "setfacl is missing: make $runner_dir/_diag readable by $agent_user (apt-get install acl, then rerun)"
      fi
      if [ -d "$D$runner_dir" ]; then
        if [ "$dry_run" = 1 ]; then echo "would set ACTIONS_RUNNER_HOOK_JOB_STARTED/_COMPLETED in $runner_dir/.env"; return; fi
        if [ -f "$env_file" ] && grep -v "$MARK" "$env_file" | grep -v "$P$OPT/hooks/job-" | grep -q '^ACTIONS_RUNNER_HOOK_JOB_\(STARTED\|COMPLETED\)='; then
          note "$runner_dir/.env already sets a job hook of its own: call $P$OPT/hooks/job-started and job-completed from it"
          return
        fi
        [ -f "$env_file" ] && sed -i -e "/$MARK/d" -e "\\|$P$OPT/hooks/job-|d" "$env_file"
        printf '%s\nACTIONS_RUNNER_HOOK_JOB_STARTED=%s\nACTIONS_RUNNER_HOOK_JOB_COMPLETED=%s\n' \
          "$MARK" "$P$OPT/hooks/job-started" "$P$OPT/hooks/job-completed" >> "$env_file"
        manifest_rows+=("runnerconf	$runner_dir/.env	-	-	-")
        note "job hooks set in $runner_dir/.env; restart the runner service (./svc.sh stop && ./svc.sh start) to apply"
      else
        note "no runner folder $runner_dir: add to the runner's .env: ACTIONS_RUNNER_HOOK_JOB_STARTED=$P$OPT/hooks/job-started and ACTIONS_RUNNER_HOOK_JOB_COMPLETED=$P$OPT/hooks/job-completed"
      fi ;;
    gitlab)
      note "add to each [[runners]] of /etc/gitlab-runner/config.toml: pre_build_script = \"$P$BINLINK hook job-started\" and post_build_script = \"$P$BINLINK hook job-completed --result \$CI_JOB_STATUS\"" ;;
    buildkite)
      local hooks="$D/etc/buildkite-agent/hooks" phase name
      for phase in started completed; do
        name=pre-command; [ "$phase" = completed ] && name=post-command
        if [ -d "$hooks" ] && [ ! -e "$hooks/$name" ]; then
          run ln -sfn "$P$OPT/hooks/job-$phase" "$hooks/$name"
          manifest_rows+=("hook	/etc/buildkite-agent/hooks/$name	-	root	root")
        elif [ -e "$hooks/$name" ] && grep -q "ci-audit" "$hooks/$name" 2>/dev/null; then
          :
        else
          note "add to /etc/buildkite-agent/hooks/$name: $P$OPT/hooks/job-$phase"
        fi
      done ;;
    jenkins)
      note "add to each pipeline: sh '$P$BINLINK hook job-started' as its first step and, in post { always { } }, sh \"$P$BINLINK hook job-completed --result \${currentBuild.currentResult}\"" ;;
  esac
}

write_manifest() {
  [ "$dry_run" = 1 ] && return
  printf '%s\n' "preset=$preset" "agent_id=$agent_id" "runner_user=$runner_user" "runner_uid=$runner_uid" \
    "runner_dir=$runner_dir" "http_port=$http_port" "agent_user=$agent_user" "url=$url" > "$D$SAVED"
  chmod 0644 "$D$SAVED"
  manifest_rows+=("app	$SAVED	0644	root	root")
  # What an earlier run installed and this one left as it was (a hook link already in place, the CA
  # file of an install given --ca-file) stays listed while it exists, so uninstall still removes it.
  local kind path rest
  if [ -f "$D$MANIFEST" ]; then
    while IFS=$'\t' read -r kind path rest; do
      [ "$kind" = kind ] && continue
      if [ -e "$D$path" ] || [ -L "$D$path" ]; then manifest_rows+=("$kind	$path	$rest"); fi
    done < "$D$MANIFEST"
  fi
  printf 'kind\tpath\tmode\towner\tgroup\n' > "$D$MANIFEST.tmp"
  printf '%s\n' "${manifest_rows[@]}" | awk -F'\t' '!seen[$2]++' >> "$D$MANIFEST.tmp"
  mv -f "$D$MANIFEST.tmp" "$D$MANIFEST"
  chmod 0644 "$D$MANIFEST"
}

start_service() {
  if [ "$start" = 0 ]; then note "not started (--no-start): systemctl enable --now $UNIT"; return; fi
  if [ "$system" = 1 ] && ! service_active; then note "systemd is not running here: start the agent with $OPT/bin/ci-audit agent run --config $CONF/agent.yaml"; return; fi
  system_run systemctl daemon-reload
  if [ "$action" = upgrade ]; then system_run systemctl restart "$UNIT"; else system_run systemctl enable --now "$UNIT"; fi
}

preset_defaults() {
  : "${agent_id:=$(hostname)}"
  case "$preset" in
    github-actions) : "${runner_user:=runner}" "${runner_dir:=/home/runner/actions-runner}" ;;
    gitlab) : "${runner_user:=gitlab-runner}" ;;
    jenkins) : "${runner_user:=jenkins}" "${runner_dir:=/var/lib/jenkins}" ;;
    buildkite) : "${runner_user:=buildkite-agent}" ;;
  esac
}

install() {
  [ -n "$url" ] || [ -f "$D$CONF/agent.yaml" ] || die "--aggregator-url is required for a first install"
  # The agent refuses output.tls with an http:// URL (nothing of it would be checked): say so first.
  if [ -n "$ca_file" ]; then
    case $url in [Hh][Tt][Tt][Pp]://*) die "--ca-file needs an https:// --aggregator-url (got $url): over http:// no certificate is checked" ;; esac
  fi
  [ "$system" = 1 ] && [ "$(id -u)" != 0 ] && [ "$dry_run" = 0 ] && die "run as root (or give --destdir to install below a folder)"
  if [ "$action" = upgrade ] && [ ! -f "$D$MANIFEST" ]; then die "nothing to upgrade: $MANIFEST is missing (run install)"; fi
  preset_defaults
  if [ -z "$runner_uid" ] && [ -n "$runner_user" ]; then
    runner_uid=$(id -u "$runner_user" 2>/dev/null) || [ "$action" = upgrade ] ||
      die "the runner's account $runner_user does not exist here: give --runner-user or --runner-uid"
  fi
  check_runner_user
  node=$(find_node)
  local mode=''; [ "$dry_run" = 1 ] && mode=' (dry run)'
  note "$action$mode: preset $preset, agent $agent_id, from $src, Node.js $("$node" --version)${D:+, below $D}"
  create_accounts
  mkdir_own app "$OPT" 0755 root root
  if service_active && [ "$action" = upgrade ]; then system_run systemctl stop "$UNIT"; fi
  install_app
  install_config
  install_state
  generate_key
  enroll
  install_unit
  install_runner_hooks
  write_manifest
  start_service
  note "done: $P$BINLINK status --config $P$CONF/agent.yaml shows what the agent reads and sends"
}

src=${from:-$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)}
case "$action" in
  install|upgrade) install ;;
  uninstall) uninstall ;;
  # The agent.yaml a preset gives, on stdout (tests, and to compare with an installed one).
  render-config) preset_defaults; render_config ;;
esac
