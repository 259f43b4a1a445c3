// A real, throw-away Elasticsearch for tests and the quickstart: fetched once from Maven Central,
// extracted into a cache, started per run in a fresh temporary folder with security on, and always
// cleaned up. See docs/elasticsearch-test-cluster.md for what this distribution carries.
//
//   node scripts/elasticsearch.ts start            start one, write .run/elasticsearch.json, print exports
//   node scripts/elasticsearch.ts status           is the started one up? (health + version)
//   node scripts/elasticsearch.ts stop             stop it, remove its temporary folder and the state file
//   node scripts/elasticsearch.ts run -- <cmd...>  start one, run <cmd> with ES_URL/ES_VERSION, always stop
//
// Importable: startElasticsearch(), runWithElasticsearch(), stopFromStateFile(), ... (see exports).

import { spawn, spawnSync } from 'node:child_process';
import type { ChildProcess, SpawnSyncReturns } from 'node:child_process';
import { pbkdf2Sync, randomBytes } from 'node:crypto';
import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { redactUrl } from '../core/secrets.ts';

export { redactUrl };

// ---------------------------------------------------------------------------------------------
// Constants and options

/** Pinned: the newest integ-test-zip that exists on Maven Central (9.5.5 and 9.5.6 do not). */
export const DEFAULT_ES_VERSION = '9.5.4';
const MAVEN_GROUP = 'org.elasticsearch.distribution.integ-test-zip';
const MAVEN_ARTIFACT = 'elasticsearch';
/** Elasticsearch 9 refuses older JVMs. */
const MIN_JAVA_MAJOR = 21;
/** Elasticsearch refuses to run as root, so root runs it as this system user. */
export const ES_SYSTEM_USER = 'ci-audit-es';
const ES_USERNAME = 'elastic';
const CLUSTER_NAME = 'ci-audit-test';
const DEFAULT_START_TIMEOUT_MS = 180_000;
const DEFAULT_HEAP = '512m';
const STOP_GRACE_MS = 30_000;
const LOG_TAIL_LINES = 60;
const PROJECT_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
/** Where `start` records the cluster that `status` and `stop` act on; .run/ is gitignored. */
export const STATE_FILE = path.join(PROJECT_ROOT, '.run', 'elasticsearch.json');

export interface StartOptions {
  /** Elasticsearch version. Default: env CI_AUDIT_ES_VERSION, else DEFAULT_ES_VERSION (9.5.4). */
  version?: string;
  /** Folder holding the extracted distributions. Default: env CI_AUDIT_CACHE_DIR, else /var/cache/ci-audit (root) or ${XDG_CACHE_HOME:-~/.cache}/ci-audit. */
  cacheDir?: string;
  /** How long to wait for a yellow cluster. Default: env CI_AUDIT_ES_START_TIMEOUT (seconds), else 180 s. */
  timeoutMs?: number;
  /** JVM heap (-Xms = -Xmx). Default: env CI_AUDIT_ES_HEAP, else 512m. */
  heap?: string;
  /** Extra elasticsearch.yml settings; unknown settings make Elasticsearch refuse to start. Default: none. */
  settings?: Record<string, string | number | boolean>;
  /**
   * Roles and users of the file realm (config/roles.yml, users, users_roles), the only way to have
   * users other than `elastic` on this distribution: its native realm cannot create the .security
   * index, so PUT _security/role|user and API keys fail. Default: env CI_AUDIT_ES_SECURITY_FILE
   * (a JSON file of this shape), else none.
   */
  fileRealm?: FileRealm;
  /**
   * Kill Elasticsearch when this process dies, even by SIGKILL (a detached watchdog holds a pipe to
   * us and stops the cluster when the pipe closes). Default: true. `start` turns it off because it
   * exits while the cluster keeps running.
   */
  stopWithProcess?: boolean;
  /** Keep the temporary folder (config, data, logs) when the start fails. Default: env CI_AUDIT_ES_KEEP_FAILED=1, else false. */
  keepOnFailure?: boolean;
  /** Aborts a start in progress; everything started so far is cleaned up. */
  signal?: AbortSignal;
  /** Progress lines (never secrets). Default: stderr with an `elasticsearch:` prefix. */
  log?: (line: string) => void;
}

export interface RunningElasticsearch {
  /** http://elastic:<password>@127.0.0.1:<port>, what ES_URL carries. Do not log it: use redactUrl(). */
  readonly url: string;
  /** http://127.0.0.1:<port>, without credentials (fetch() refuses URLs with credentials). */
  readonly baseUrl: string;
  readonly username: string;
  readonly password: string;
  /** The version the node reports (nodes info API; this distribution has no GET /). */
  readonly version: string;
  /** Process id of the launcher, which leads the process group of the whole cluster. */
  readonly pid: number;
  readonly httpPort: number;
  /** The run's temporary folder: config/, data/, logs/, tmp/, elasticsearch.out. */
  readonly tmpDir: string;
  /** Stops the cluster and removes its temporary folder. Safe to call more than once. */
  stop(): Promise<void>;
}

/** A role in the body format of PUT _security/role/<name>: cluster, indices: [{ names, privileges }], ... */
export type RoleDescriptor = Record<string, unknown>;

export interface FileRealmUser {
  username: string;
  password: string;
  roles: string[];
}

export interface FileRealm {
  roles?: Record<string, RoleDescriptor>;
  users?: FileRealmUser[];
}

/** Contents of .run/elasticsearch.json (mode 600: it holds the password). */
export interface ElasticsearchState {
  pid: number;
  /** Without credentials. */
  url: string;
  username: string;
  password: string;
  tmpdir: string;
  version: string;
  startedAt: string;
}

export type HarnessErrorCode =
  | 'ES_HARNESS_USAGE'
  | 'ES_HARNESS_JAVA_NOT_FOUND'
  | 'ES_HARNESS_FETCH_FAILED'
  | 'ES_HARNESS_EXTRACT_FAILED'
  | 'ES_HARNESS_SETUP_FAILED'
  | 'ES_HARNESS_START_FAILED'
  | 'ES_HARNESS_START_TIMEOUT'
  | 'ES_HARNESS_ABORTED'
  | 'ES_HARNESS_ALREADY_RUNNING';

/** Errors of this developer tool; they are not part of the product's error table (core/errors.ts). */
export class ElasticsearchHarnessError extends Error {
  readonly code: HarnessErrorCode;
  constructor(code: HarnessErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'ElasticsearchHarnessError';
    this.code = code;
  }
}

const defaultLog = (line: string): void => {
  process.stderr.write(`elasticsearch: ${line}\n`);
};

// ---------------------------------------------------------------------------------------------
// Small helpers

function isRoot(): boolean {
  return process.getuid?.() === 0;
}

function errnoCode(err: unknown): string | undefined {
  return typeof err === 'object' && err !== null && 'code' in err ? String(err.code) : undefined;
}

function seconds(ms: number): string {
  return `${(ms / 1000).toFixed(1)} s`;
}

/** The absolute path of an executable on PATH, or undefined. */
export function which(command: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    if (dir === '') continue;
    const candidate = path.join(dir, command);
    try {
      fs.accessSync(candidate, fs.constants.X_OK);
      if (fs.statSync(candidate).isFile()) return candidate;
    } catch {
      // not here; keep looking
    }
  }
  return undefined;
}

/** Runs a command to completion, capturing output; throws `code` with the output's tail when it fails. */
function runChecked(
  code: HarnessErrorCode,
  what: string,
  command: string,
  args: string[],
  options: { cwd?: string; env?: NodeJS.ProcessEnv; input?: string; uid?: number; gid?: number } = {},
): SpawnSyncReturns<string> {
  const result = spawnSync(command, args, { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024, ...options });
  if (result.error !== undefined || result.status !== 0) {
    const output = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim().split('\n').slice(-20).join('\n');
    const why = result.error !== undefined ? result.error.message : `exit code ${String(result.status ?? result.signal)}`;
    throw new ElasticsearchHarnessError(code, `${what} failed (${command} ${args.join(' ')}: ${why})${output ? `:\n${output}` : ''}`);
  }
  return result;
}

/** apt-get install, only when root: a fresh Debian machine may lack a tool we need. */
function aptInstall(pkg: string, log: (line: string) => void): boolean {
  if (!isRoot() || which('apt-get') === undefined) return false;
  log(`installing the Debian package ${pkg} (apt-get)`);
  const env = { ...process.env, DEBIAN_FRONTEND: 'noninteractive' };
  runChecked('ES_HARNESS_SETUP_FAILED', 'apt-get update', 'apt-get', ['update', '-q'], { env });
  runChecked('ES_HARNESS_SETUP_FAILED', `apt-get install ${pkg}`, 'apt-get', ['install', '-y', '-q', '--no-install-recommends', pkg], { env });
  return true;
}

function tailOfFile(file: string, lines: number): string | undefined {
  try {
    const text = fs.readFileSync(file, 'utf8').trimEnd();
    return text === '' ? undefined : text.split('\n').slice(-lines).join('\n');
  } catch {
    return undefined;
  }
}

function abortIfRequested(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw new ElasticsearchHarnessError('ES_HARNESS_ABORTED', 'Elasticsearch start aborted');
}

// ---------------------------------------------------------------------------------------------
// Java

export interface JavaHome {
  home: string;
  major: number;
  version: string;
}

/** Reads JAVA_VERSION from a JDK's `release` file ("1.8.0_392" is Java 8, "25.0.3" is Java 25). */
export function readJavaHome(home: string): JavaHome | undefined {
  let release: string;
  try {
    release = fs.readFileSync(path.join(home, 'release'), 'utf8');
  } catch {
    return undefined;
  }
  const version = /^JAVA_VERSION="?([^"\n]+)"?/m.exec(release)?.[1];
  if (version === undefined || !fs.existsSync(path.join(home, 'bin', 'java'))) return undefined;
  const parts = version.split(/[._+-]/).map((p) => Number.parseInt(p, 10));
  const major = parts[0] === 1 ? parts[1] : parts[0];
  if (major === undefined || Number.isNaN(major)) return undefined;
  return { home, major, version };
}

function compareVersions(a: string, b: string): number {
  const pa = a.split(/[._+-]/).map((p) => Number.parseInt(p, 10) || 0);
  const pb = b.split(/[._+-]/).map((p) => Number.parseInt(p, 10) || 0);
  for (let i = 0; i < Math.max(pa.length, pb.length); i++) {
    const d = (pa[i] ?? 0) - (pb[i] ?? 0);
    if (d !== 0) return d;
  }
  return 0;
}

/**
 * A JDK >= 21: ES_JAVA_HOME when set (an explicit choice, so too old is an error), else JAVA_HOME
 * when new enough (it is often set to an older JDK for other builds, so too old is skipped), else
 * the newest JDK under /usr/lib/jvm, judged by its `release` file and not by its folder name.
 */
export function findJava(env: NodeJS.ProcessEnv = process.env, jvmDir = '/usr/lib/jvm'): JavaHome {
  const explicit = env.ES_JAVA_HOME;
  if (explicit !== undefined && explicit !== '') {
    const java = readJavaHome(explicit);
    if (java === undefined || java.major < MIN_JAVA_MAJOR) {
      throw new ElasticsearchHarnessError(
        'ES_HARNESS_JAVA_NOT_FOUND',
        `ES_JAVA_HOME=${explicit} is ${java ? `Java ${java.version}` : 'not a JDK (no release file or bin/java)'}; Elasticsearch needs Java >= ${MIN_JAVA_MAJOR}. Unset it to pick a JDK from ${jvmDir}.`,
      );
    }
    return java;
  }
  const fromJavaHome = env.JAVA_HOME ? readJavaHome(env.JAVA_HOME) : undefined;
  if (fromJavaHome !== undefined && fromJavaHome.major >= MIN_JAVA_MAJOR) return fromJavaHome;

  const seen = new Set<string>();
  const found: JavaHome[] = [];
  let entries: string[] = [];
  try {
    entries = fs.readdirSync(jvmDir);
  } catch {
    // no such folder: reported below
  }
  for (const entry of entries) {
    let real: string;
    try {
      real = fs.realpathSync(path.join(jvmDir, entry));
    } catch {
      continue;
    }
    if (seen.has(real)) continue; // Debian links several names to one JDK
    seen.add(real);
    const java = readJavaHome(real);
    if (java !== undefined) found.push(java);
  }
  const usable = found.filter((j) => j.major >= MIN_JAVA_MAJOR).sort((a, b) => compareVersions(b.version, a.version));
  const best = usable[0];
  if (best === undefined) {
    const list = found.map((j) => `${j.home} (${j.version})`).join(', ') || 'none';
    throw new ElasticsearchHarnessError(
      'ES_HARNESS_JAVA_NOT_FOUND',
      `no JDK >= ${MIN_JAVA_MAJOR} found: ES_JAVA_HOME is unset, JAVA_HOME is ${env.JAVA_HOME ?? 'unset'}, JDKs in ${jvmDir}: ${list}. Install one under /usr/lib/jvm (Debian 12 packages only Java 17; e.g. Temurin 21+) or set ES_JAVA_HOME.`,
    );
  }
  return best;
}

// ---------------------------------------------------------------------------------------------
// Distribution: fetch from Maven Central, extract once into the cache

export function resolveVersion(version?: string): string {
  const v = version ?? (process.env.CI_AUDIT_ES_VERSION || DEFAULT_ES_VERSION);
  // It becomes part of paths and Maven coordinates.
  if (!/^\d+\.\d+\.\d+$/.test(v)) {
    throw new ElasticsearchHarnessError('ES_HARNESS_USAGE', `Elasticsearch version "${v}" (CI_AUDIT_ES_VERSION) is not of the form 9.5.4`);
  }
  return v;
}

/** The folder holding extracted distributions; see StartOptions.cacheDir. */
export function resolveCacheDir(cacheDir?: string): string {
  if (cacheDir) return path.resolve(cacheDir);
  if (process.env.CI_AUDIT_CACHE_DIR) return path.resolve(process.env.CI_AUDIT_CACHE_DIR);
  // Root runs Elasticsearch as another user, who must be able to read it: /var/cache is traversable.
  if (isRoot()) return '/var/cache/ci-audit';
  const xdg = process.env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(xdg, 'ci-audit');
}

function zipInRepository(repository: string, version: string): string {
  return path.join(repository, ...MAVEN_GROUP.split('.'), MAVEN_ARTIFACT, version, `${MAVEN_ARTIFACT}-${version}.zip`);
}

/** The distribution zip in the local Maven repository, downloaded by `mvn dependency:get` when missing. */
export function fetchDistribution(version: string, log: (line: string) => void = defaultLog): string {
  const defaultZip = zipInRepository(path.join(os.homedir(), '.m2', 'repository'), version);
  if (fs.existsSync(defaultZip)) return defaultZip;

  if (which('mvn') === undefined && !aptInstall('maven', log)) {
    throw new ElasticsearchHarnessError('ES_HARNESS_FETCH_FAILED', 'Maven (mvn) is needed to fetch Elasticsearch from Maven Central: apt-get install maven');
  }
  const artifact = `${MAVEN_GROUP}:${MAVEN_ARTIFACT}:${version}:zip`;
  log(`fetching ${artifact} from Maven Central (mvn dependency:get, ~130 MB)`);
  runChecked('ES_HARNESS_FETCH_FAILED', `fetching ${artifact} (does this version exist as integ-test-zip on Maven Central?)`, 'mvn', [
    '-q', '-B', 'dependency:get', `-Dartifact=${artifact}`, '-Dtransitive=false',
  ]);
  if (fs.existsSync(defaultZip)) return defaultZip;
  // A settings.xml may move the local repository: ask Maven where it is.
  const repo = runChecked('ES_HARNESS_FETCH_FAILED', 'locating the local Maven repository', 'mvn', [
    '-q', '-B', '-Dstyle.color=never', 'help:evaluate', '-Dexpression=settings.localRepository', '-DforceStdout',
  ]).stdout
    // eslint-disable-next-line no-control-regex -- Maven 3.8 colours even in batch mode: strip ANSI colour codes
    .replace(/\x1b\[[0-9;]*m/g, '')
    .trim();
  const zip = zipInRepository(repo, version);
  if (!fs.existsSync(zip)) {
    throw new ElasticsearchHarnessError('ES_HARNESS_FETCH_FAILED', `mvn reported success but ${zip} does not exist`);
  }
  return zip;
}

/** Unpacks with the first tool this machine has; only unzip keeps file modes, fixed afterwards anyway. */
function unpackZip(zip: string, dest: string, java: JavaHome, log: (line: string) => void): void {
  const what = `extracting ${zip}`;
  if (which('unzip') !== undefined) {
    runChecked('ES_HARNESS_EXTRACT_FAILED', what, 'unzip', ['-q', zip, '-d', dest]);
  } else if (which('python3') !== undefined) {
    runChecked('ES_HARNESS_EXTRACT_FAILED', what, 'python3', ['-m', 'zipfile', '-e', zip, dest]);
  } else if (fs.existsSync(path.join(java.home, 'bin', 'jar'))) {
    runChecked('ES_HARNESS_EXTRACT_FAILED', what, path.join(java.home, 'bin', 'jar'), ['xf', zip], { cwd: dest });
  } else if (aptInstall('unzip', log)) {
    runChecked('ES_HARNESS_EXTRACT_FAILED', what, 'unzip', ['-q', zip, '-d', dest]);
  } else {
    throw new ElasticsearchHarnessError('ES_HARNESS_EXTRACT_FAILED', `${what}: no unzip, python3 or ${java.home}/bin/jar on this machine; install unzip`);
  }
}

/**
 * Makes the tree readable by everyone and keeps executables executable: the zip stores config files
 * as 660 and python/jar drop modes, while the Elasticsearch user is neither owner nor group.
 */
function normalizeModes(dir: string, inBin = false): void {
  fs.chmodSync(dir, 0o755);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) {
      normalizeModes(full, inBin || entry.name === 'bin');
    } else if (entry.isFile()) {
      const executable = inBin || (fs.statSync(full).mode & 0o111) !== 0;
      fs.chmodSync(full, executable ? 0o755 : 0o644);
    }
  }
}

function isExtracted(home: string): boolean {
  return fs.existsSync(path.join(home, 'bin', 'elasticsearch')) && fs.existsSync(path.join(home, 'lib'));
}

/** ES_HOME of the version, extracted on first use: to a temporary folder, then renamed, so a half-extracted tree is never used. */
export function ensureDistribution(version: string, java: JavaHome, options: { cacheDir?: string; log?: (line: string) => void } = {}): string {
  const log = options.log ?? defaultLog;
  const cacheDir = resolveCacheDir(options.cacheDir);
  const home = path.join(cacheDir, `elasticsearch-${version}`);
  if (isExtracted(home)) return home;

  const zip = fetchDistribution(version, log);
  fs.mkdirSync(cacheDir, { recursive: true, mode: 0o755 });
  const staging = fs.mkdtempSync(path.join(cacheDir, `.elasticsearch-${version}-`));
  try {
    log(`extracting ${path.basename(zip)} into ${home}`);
    unpackZip(zip, staging, java, log);
    const top = fs.readdirSync(staging);
    const inner = top.length === 1 && top[0] !== undefined ? path.join(staging, top[0]) : staging;
    if (!isExtracted(inner)) {
      throw new ElasticsearchHarnessError('ES_HARNESS_EXTRACT_FAILED', `${zip} does not hold an Elasticsearch distribution (no bin/elasticsearch)`);
    }
    normalizeModes(inner);
    try {
      fs.renameSync(inner, home);
    } catch (err) {
      // Another run extracted it at the same time: theirs is complete, use it.
      if (!['EEXIST', 'ENOTEMPTY'].includes(errnoCode(err) ?? '') || !isExtracted(home)) throw err;
    }
  } finally {
    fs.rmSync(staging, { recursive: true, force: true });
  }
  return home;
}

/** Every folder above `dir` must be traversable by others, or the Elasticsearch user cannot reach it. */
function assertReachableByOthers(dir: string): void {
  for (let d = dir; ; d = path.dirname(d)) {
    if ((fs.statSync(d).mode & 0o001) === 0) {
      throw new ElasticsearchHarnessError(
        'ES_HARNESS_SETUP_FAILED',
        `${dir} is not reachable by the user ${ES_SYSTEM_USER}: ${d} is not traversable by others (chmod o+x ${d}, or point CI_AUDIT_CACHE_DIR elsewhere)`,
      );
    }
    if (path.dirname(d) === d) return;
  }
}

// ---------------------------------------------------------------------------------------------
// The user Elasticsearch runs as

interface RunAs {
  uid: number;
  gid: number;
  name: string;
  /** True when it is the current user (not root): no uid switch, no chown. */
  current: boolean;
}

function lookupUser(name: string): { uid: number; gid: number } | undefined {
  const uid = spawnSync('id', ['-u', name], { encoding: 'utf8' });
  const gid = spawnSync('id', ['-g', name], { encoding: 'utf8' });
  if (uid.status !== 0 || gid.status !== 0) return undefined;
  return { uid: Number(uid.stdout.trim()), gid: Number(gid.stdout.trim()) };
}

/** The current user, or, for root (whom Elasticsearch refuses), the system user ci-audit-es, created when missing. */
export function ensureRunAsUser(log: (line: string) => void = defaultLog): RunAs {
  if (!isRoot()) {
    return { uid: process.getuid?.() ?? 0, gid: process.getgid?.() ?? 0, name: os.userInfo().username, current: true };
  }
  let ids = lookupUser(ES_SYSTEM_USER);
  if (ids === undefined) {
    log(`creating the system user ${ES_SYSTEM_USER} (Elasticsearch refuses to run as root)`);
    const result = spawnSync('useradd', ['--system', '--no-create-home', '--shell', '/usr/sbin/nologin', ES_SYSTEM_USER], { encoding: 'utf8' });
    ids = lookupUser(ES_SYSTEM_USER); // a parallel run may have created it first: that is fine
    if (ids === undefined) {
      throw new ElasticsearchHarnessError('ES_HARNESS_SETUP_FAILED', `useradd ${ES_SYSTEM_USER} failed: ${(result.stderr || result.error?.message || '').trim()}`);
    }
  }
  return { ...ids, name: ES_SYSTEM_USER, current: false };
}

// ---------------------------------------------------------------------------------------------
// One run's folder: config, data, logs

/** A free TCP port on loopback: bound to port 0, then released for Elasticsearch to take. */
function freePorts(count: number): Promise<number[]> {
  const servers = Array.from({ length: count }, () => net.createServer());
  return Promise.all(
    servers.map(
      (server) =>
        new Promise<number>((resolve, reject) => {
          server.once('error', reject);
          server.listen({ port: 0, host: '127.0.0.1', exclusive: true }, () => {
            const address = server.address();
            resolve(typeof address === 'object' && address !== null ? address.port : 0);
          });
        }),
    ),
  ).finally(() => {
    for (const server of servers) server.close();
  });
}

function yamlValue(value: string | number | boolean): string {
  return typeof value === 'string' ? JSON.stringify(value) : String(value);
}

/**
 * elasticsearch.yml for a single loopback node with security on and TLS off (plain HTTP on
 * 127.0.0.1 is what tests need; security on so they exercise real credentials and privileges).
 * Only settings this distribution registers: an unknown setting stops the node at start-up.
 */
function elasticsearchYml(dirs: RunDirs, httpPort: number, transportPort: number, extra: Record<string, string | number | boolean>): string {
  const settings: Record<string, string | number | boolean> = {
    'cluster.name': CLUSTER_NAME,
    'node.name': `${CLUSTER_NAME}-node`,
    'network.host': '127.0.0.1',
    'http.port': httpPort,
    'transport.port': transportPort,
    'discovery.type': 'single-node',
    'path.data': dirs.data,
    'path.logs': dirs.logs,
    'xpack.security.enabled': true,
    'xpack.security.http.ssl.enabled': false,
    'xpack.security.transport.ssl.enabled': false,
    // Tests delete indices by pattern; CI disks are often > 90 % full, which would block writes.
    'action.destructive_requires_name': false,
    'cluster.routing.allocation.disk.threshold_enabled': false,
    ...extra,
  };
  const lines = Object.entries(settings).map(([key, value]) => `${key}: ${yamlValue(value)}`);
  return `# Written by scripts/elasticsearch.ts for one test run.\n${lines.join('\n')}\n`;
}

interface RunDirs {
  root: string;
  config: string;
  data: string;
  logs: string;
  tmp: string;
  stdout: string;
}

/**
 * The integ-test-zip's jvm.options write gc.log and hs_err files relative to the working
 * directory, which the launcher sets to ES_HOME: read-only for the Elasticsearch user. Point them
 * into this run's logs folder instead.
 */
function patchJvmOptions(dirs: RunDirs): void {
  const file = path.join(dirs.config, 'jvm.options');
  const text = fs.readFileSync(file, 'utf8')
    .replace(/file=(?!\/)([^:\s]+)/g, (_m, name: string) => `file=${path.join(dirs.logs, path.basename(name))}`)
    .replace(/-XX:ErrorFile=(?!\/)(\S+)/g, (_m, name: string) => `-XX:ErrorFile=${path.join(dirs.logs, path.basename(name))}`);
  fs.writeFileSync(file, text);
  const extra = path.join(dirs.config, 'jvm.options.d');
  fs.mkdirSync(extra, { recursive: true });
  fs.writeFileSync(path.join(extra, 'ci-audit.options'), `-XX:HeapDumpPath=${dirs.logs}\n`);
}

// The file realm: users and roles read from ES_PATH_CONF at start-up.

const REALM_NAME = /^[A-Za-z0-9_.@+-]{1,255}$/;

/**
 * A password hash the file realm verifies: {PBKDF2}<iterations>$<base64 salt>$<base64 key>,
 * PBKDF2-HMAC-SHA512 with a 32-byte salt and key, as Elasticsearch's Hasher writes it (it reads the
 * algorithm from the prefix, whatever xpack.security.authc.password_hashing.algorithm says).
 */
export function fileRealmPasswordHash(password: string, iterations = 10_000): string {
  const salt = randomBytes(32);
  const key = pbkdf2Sync(password, salt, iterations, 32, 'sha512');
  return `{PBKDF2}${iterations}$${salt.toString('base64')}$${key.toString('base64')}`;
}

function checkRealmName(kind: string, name: string): void {
  if (!REALM_NAME.test(name)) {
    throw new ElasticsearchHarnessError('ES_HARNESS_USAGE', `file realm ${kind} name "${name}" must match ${String(REALM_NAME)}`);
  }
}

/** Loads CI_AUDIT_ES_SECURITY_FILE when set: { "roles": { name: descriptor }, "users": [{ username, password, roles }] }. */
export function loadFileRealm(file = process.env.CI_AUDIT_ES_SECURITY_FILE): FileRealm | undefined {
  if (!file) return undefined;
  let parsed: unknown;
  try {
    parsed = JSON.parse(fs.readFileSync(file, 'utf8')) as unknown;
  } catch (err) {
    throw new ElasticsearchHarnessError('ES_HARNESS_USAGE', `CI_AUDIT_ES_SECURITY_FILE=${file}: ${err instanceof Error ? err.message : String(err)}`);
  }
  const roles = field(parsed, 'roles');
  const users = field(parsed, 'users');
  const rolesOk = roles === undefined || (typeof roles === 'object' && roles !== null && !Array.isArray(roles));
  const usersOk = users === undefined || (Array.isArray(users) && users.every((u) => typeof field(u, 'username') === 'string' && typeof field(u, 'password') === 'string' && Array.isArray(field(u, 'roles'))));
  if (!rolesOk || !usersOk) {
    throw new ElasticsearchHarnessError('ES_HARNESS_USAGE', `CI_AUDIT_ES_SECURITY_FILE=${file} must hold { "roles": { "<name>": { ... } }, "users": [{ "username", "password", "roles": [...] }] }`);
  }
  return parsed as FileRealm;
}

function writeFileRealm(config: string, realm: FileRealm): void {
  const roles = Object.entries(realm.roles ?? {});
  const users = realm.users ?? [];
  if (roles.length === 0 && users.length === 0) return;
  // JSON is YAML: one flow mapping per role keeps us free of a YAML writer.
  const rolesYml = roles.map(([name, descriptor]) => {
    checkRealmName('role', name);
    return `${JSON.stringify(name)}: ${JSON.stringify(descriptor)}`;
  });
  fs.writeFileSync(path.join(config, 'roles.yml'), `${rolesYml.join('\n')}\n`);
  const byRole = new Map<string, string[]>();
  const lines = users.map((user) => {
    checkRealmName('user', user.username);
    for (const role of user.roles) {
      checkRealmName('role', role);
      byRole.set(role, [...(byRole.get(role) ?? []), user.username]);
    }
    return `${user.username}:${fileRealmPasswordHash(user.password)}`;
  });
  fs.writeFileSync(path.join(config, 'users'), `${lines.join('\n')}\n`);
  const usersRoles = [...byRole].map(([role, names]) => `${role}:${names.join(',')}`);
  fs.writeFileSync(path.join(config, 'users_roles'), `${usersRoles.join('\n')}\n`);
}

function chownTree(dir: string, user: RunAs): void {
  fs.chownSync(dir, user.uid, user.gid);
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) chownTree(full, user);
    else fs.lchownSync(full, user.uid, user.gid);
  }
}

interface RunConfig {
  httpPort: number;
  transportPort: number;
  settings: Record<string, string | number | boolean>;
  fileRealm: FileRealm;
}

function prepareRunDirs(esHome: string, user: RunAs, run: RunConfig): RunDirs {
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'ci-audit-es-'));
  const dirs: RunDirs = {
    root,
    config: path.join(root, 'config'),
    data: path.join(root, 'data'),
    logs: path.join(root, 'logs'),
    tmp: path.join(root, 'tmp'),
    stdout: path.join(root, 'elasticsearch.out'),
  };
  try {
    fs.cpSync(path.join(esHome, 'config'), dirs.config, { recursive: true });
    for (const d of [dirs.data, dirs.logs, dirs.tmp]) fs.mkdirSync(d);
    fs.writeFileSync(path.join(dirs.config, 'elasticsearch.yml'), elasticsearchYml(dirs, run.httpPort, run.transportPort, run.settings));
    patchJvmOptions(dirs);
    writeFileRealm(dirs.config, run.fileRealm);
    if (!user.current) chownTree(root, user);
  } catch (err) {
    fs.rmSync(root, { recursive: true, force: true });
    throw err;
  }
  return dirs;
}

function esEnv(java: JavaHome, dirs: RunDirs, heap: string): NodeJS.ProcessEnv {
  // A clean environment: the caller's (ES_URL, JAVA_HOME, JAVA_TOOL_OPTIONS...) must not leak in.
  // -XX:-UsePerfData: no /tmp/hsperfdata_<user> files (the JVM puts them in /tmp, not in ES_TMPDIR).
  return {
    PATH: process.env.PATH ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: dirs.root, // the system user has no home folder
    LANG: 'C.UTF-8',
    ES_JAVA_HOME: java.home,
    ES_PATH_CONF: dirs.config,
    ES_TMPDIR: dirs.tmp,
    ES_JAVA_OPTS: `-Xms${heap} -Xmx${heap} -XX:-UsePerfData`,
    CLI_JAVA_OPTS: '-XX:-UsePerfData',
  };
}

/**
 * The `elastic` superuser's password, set through the keystore's bootstrap.password before the
 * first start (the reserved realm accepts it as long as no password is stored in .security).
 * `add --force` creates the keystore too: one JVM start instead of two.
 */
function writeBootstrapPassword(esHome: string, env: NodeJS.ProcessEnv, user: RunAs, password: string): void {
  const ids = user.current ? {} : { uid: user.uid, gid: user.gid };
  const tool = path.join(esHome, 'bin', 'elasticsearch-keystore');
  runChecked('ES_HARNESS_SETUP_FAILED', 'writing bootstrap.password into a new Elasticsearch keystore', tool, ['add', '--force', '--stdin', 'bootstrap.password'], {
    env,
    input: password,
    ...ids,
  });
}

/**
 * The JVM's java-version check (bin/elasticsearch-env) still creates /tmp/hsperfdata_<user>:
 * remove it once empty, for the system user only (a developer's own JVMs may use theirs).
 */
function removeEmptyPerfDataDir(): void {
  if (!isRoot()) return;
  try {
    fs.rmdirSync(path.join('/tmp', `hsperfdata_${ES_SYSTEM_USER}`));
  } catch {
    // not empty (another run is up) or already gone
  }
}

// ---------------------------------------------------------------------------------------------
// Processes: the cluster's process group and the watchdog

/** Living (non-zombie) members of a process group; zombies count as gone, PID 1 here may never reap them. */
function groupMembers(pgid: number): number[] {
  let entries: string[];
  try {
    entries = fs.readdirSync('/proc');
  } catch {
    try {
      process.kill(-pgid, 0);
      return [pgid];
    } catch {
      return [];
    }
  }
  const members: number[] = [];
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    let stat: string;
    try {
      stat = fs.readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue; // exited while we looked
    }
    // "pid (comm) state ppid pgrp ...": comm may hold spaces and parentheses, so cut at the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (Number(fields[2]) === pgid && fields[0] !== 'Z' && fields[0] !== 'X') members.push(Number(entry));
  }
  return members;
}

function signalGroup(pgid: number, signal: NodeJS.Signals): void {
  try {
    process.kill(-pgid, signal);
  } catch (err) {
    if (errnoCode(err) !== 'ESRCH') throw err;
  }
}

/** SIGTERM to the whole group (launcher and server JVM), SIGKILL after the grace period; resolves once all are gone. */
export async function stopProcessGroup(pgid: number, graceMs = STOP_GRACE_MS): Promise<void> {
  signalGroup(pgid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (groupMembers(pgid).length > 0 && Date.now() < deadline) await sleep(100);
  if (groupMembers(pgid).length === 0) return;
  signalGroup(pgid, 'SIGKILL');
  const killDeadline = Date.now() + 10_000;
  while (groupMembers(pgid).length > 0 && Date.now() < killDeadline) await sleep(100);
}

/** True when one of the group's processes looks like Elasticsearch: guards against a recycled pid in a stale state file. */
function groupIsElasticsearch(pgid: number): boolean {
  return groupMembers(pgid).some((pid) => {
    try {
      return fs.readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes('elasticsearch');
    } catch {
      return false;
    }
  });
}

interface Watchdog {
  /** Tells the watchdog the cluster was stopped on purpose, so it exits without acting. */
  disarm(): void;
}

/**
 * A detached shell that holds the read end of a pipe from this process. If this process dies in
 * any way (even SIGKILL), the pipe closes, `read` returns, and the shell stops the process groups
 * (SIGTERM, SIGKILL after 30 s) and removes the folder. A normal stop writes "done" first.
 */
function startWatchdog(pgid: number, removeDir?: string): Watchdog {
  // POSIX sh (dash): its kill takes no `--`, and "-<pgid>" names a process group.
  const script = [
    'trap "" INT HUP',
    'read -r line',
    '[ "$line" = done ] && exit 0',
    'kill -TERM "-$1" 2>/dev/null',
    'i=0; while kill -0 "-$1" 2>/dev/null && [ $i -lt 300 ]; do sleep 0.1; i=$((i+1)); done',
    'kill -KILL "-$1" 2>/dev/null',
    '[ -n "$2" ] || exit 0',
    'sleep 1; rm -rf -- "$2"',
    '[ -n "$3" ] && rmdir -- "$3" 2>/dev/null',
    'exit 0',
  ].join('\n');
  const perfData = isRoot() ? path.join('/tmp', `hsperfdata_${ES_SYSTEM_USER}`) : '';
  const child = spawn('/bin/sh', ['-c', script, 'ci-audit-es-watchdog', String(pgid), removeDir ?? '', perfData], {
    detached: true,
    stdio: ['pipe', 'ignore', 'ignore'],
  });
  child.unref();
  const stdin = child.stdin as net.Socket | null;
  stdin?.on('error', () => {}); // the watchdog gone early must not crash us
  stdin?.unref(); // the pipe must not keep this process alive
  return {
    disarm(): void {
      stdin?.end('done\n');
    },
  };
}

// ---------------------------------------------------------------------------------------------
// HTTP

function basicAuth(username: string, password: string): string {
  return `Basic ${Buffer.from(`${username}:${password}`).toString('base64')}`;
}

async function getJson(baseUrl: string, pathname: string, auth: string, timeoutMs = 5000): Promise<{ status: number; body: unknown }> {
  const res = await fetch(new URL(pathname, baseUrl), { headers: { authorization: auth }, signal: AbortSignal.timeout(timeoutMs) });
  const text = await res.text();
  let body: unknown = text;
  try {
    body = JSON.parse(text) as unknown;
  } catch {
    // not JSON: keep the text
  }
  return { status: res.status, body };
}

function field(body: unknown, ...keys: string[]): unknown {
  let value: unknown = body;
  for (const key of keys) {
    if (typeof value !== 'object' || value === null) return undefined;
    value = (value as Record<string, unknown>)[key];
  }
  return value;
}

/**
 * Elasticsearch's version, or undefined when it does not answer. From the nodes info API, not
 * GET /: that route lives in the rest-root module, which the integ-test-zip does not ship (405).
 */
async function fetchVersion(baseUrl: string, auth: string): Promise<string | undefined> {
  const { status, body } = await getJson(baseUrl, '/_nodes/_local?filter_path=nodes.*.version', auth);
  const nodes = field(body, 'nodes');
  const first: unknown = typeof nodes === 'object' && nodes !== null ? Object.values(nodes as Record<string, unknown>)[0] : undefined;
  const version = field(first, 'version');
  return status === 200 && typeof version === 'string' ? version : undefined;
}

// ---------------------------------------------------------------------------------------------
// Start

function logTails(dirs: RunDirs, log: (line: string) => void): string {
  const parts: string[] = [];
  for (const file of [path.join(dirs.logs, `${CLUSTER_NAME}.log`), dirs.stdout]) {
    const tail = tailOfFile(file, LOG_TAIL_LINES);
    if (tail !== undefined) parts.push(`--- last ${LOG_TAIL_LINES} lines of ${file} ---\n${tail}`);
  }
  const text = parts.join('\n');
  if (text) log(`\n${text}\n--- end of Elasticsearch logs ---`);
  return text;
}

interface Exit {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** Polls until the cluster is yellow with our credentials, the process exits, the deadline passes, or `signal` aborts. */
async function waitUntilReady(baseUrl: string, auth: string, exited: () => Exit | undefined, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  while (true) {
    abortIfRequested(signal);
    const exit = exited();
    if (exit !== undefined) {
      throw new ElasticsearchHarnessError('ES_HARNESS_START_FAILED', `Elasticsearch exited during start-up (${exit.signal ?? `exit code ${String(exit.code)}`})`);
    }
    if (Date.now() > deadline) {
      throw new ElasticsearchHarnessError('ES_HARNESS_START_TIMEOUT', `Elasticsearch was not yellow at ${baseUrl} within ${seconds(timeoutMs)} (last: ${last}); raise CI_AUDIT_ES_START_TIMEOUT (seconds) on slow machines`);
    }
    try {
      const { status, body } = await getJson(baseUrl, '/_cluster/health?wait_for_status=yellow&timeout=1s', auth, 5000);
      const health = field(body, 'status');
      if (status === 200 && (health === 'yellow' || health === 'green')) return;
      last = `HTTP ${status}${typeof health === 'string' ? ` status ${health}` : ''}`;
    } catch (err) {
      last = err instanceof Error ? `${err.message}${err.cause instanceof Error ? `: ${err.cause.message}` : ''}` : String(err);
    }
    await sleep(250);
  }
}

function startTimeoutMs(options: StartOptions): number {
  if (options.timeoutMs !== undefined) return options.timeoutMs;
  const env = Number(process.env.CI_AUDIT_ES_START_TIMEOUT);
  return Number.isFinite(env) && env > 0 ? env * 1000 : DEFAULT_START_TIMEOUT_MS;
}

/** Starts a fresh single-node cluster and resolves once it is yellow; see StartOptions for defaults. */
export async function startElasticsearch(options: StartOptions = {}): Promise<RunningElasticsearch> {
  const log = options.log ?? defaultLog;
  const version = resolveVersion(options.version);
  const heap = options.heap ?? (process.env.CI_AUDIT_ES_HEAP || DEFAULT_HEAP);
  const timeoutMs = startTimeoutMs(options);
  const keepOnFailure = options.keepOnFailure ?? process.env.CI_AUDIT_ES_KEEP_FAILED === '1';

  const java = findJava();
  const prepareStart = Date.now();
  const esHome = ensureDistribution(version, java, { cacheDir: options.cacheDir, log });
  const user = ensureRunAsUser(log);
  if (!user.current) assertReachableByOthers(esHome);
  log(`using ${esHome}, Java ${java.version} (${java.home}), running as ${user.name} (prepared in ${seconds(Date.now() - prepareStart)})`);

  // A port picked here can be taken by someone else before Elasticsearch binds it: retry then.
  for (let attempt = 1; ; attempt++) {
    abortIfRequested(options.signal);
    try {
      return await launch({ esHome, java, user, version, heap, timeoutMs, keepOnFailure, options, log });
    } catch (err) {
      if (!(err instanceof PortTakenError) || attempt >= 3) throw err instanceof PortTakenError ? err.cause : err;
      log(`a port was taken before Elasticsearch bound it; retrying with new ports (attempt ${attempt + 1})`);
    }
  }
}

class PortTakenError extends Error {}

interface LaunchContext {
  esHome: string;
  java: JavaHome;
  user: RunAs;
  version: string;
  heap: string;
  timeoutMs: number;
  keepOnFailure: boolean;
  options: StartOptions;
  log: (line: string) => void;
}

async function launch(ctx: LaunchContext): Promise<RunningElasticsearch> {
  const { esHome, java, user, log, options } = ctx;
  const [httpPort = 0, transportPort = 0] = await freePorts(2);
  const fileRealm = options.fileRealm ?? loadFileRealm() ?? {};
  const dirs = prepareRunDirs(esHome, user, { httpPort, transportPort, settings: options.settings ?? {}, fileRealm });
  const password = randomBytes(18).toString('base64url'); // URL-safe: it goes into ES_URL's userinfo
  const env = esEnv(java, dirs, ctx.heap);
  const baseUrl = `http://127.0.0.1:${httpPort}`;
  const auth = basicAuth(ES_USERNAME, password);
  let child: ChildProcess | undefined;
  let watchdog: Watchdog | undefined;
  const started = Date.now();

  try {
    writeBootstrapPassword(esHome, env, user, password);
    abortIfRequested(options.signal);
    const out = fs.openSync(dirs.stdout, 'a');
    try {
      // detached: its own process group, so one signal reaches launcher and server JVM alike, and
      // a Ctrl-C meant for the test command does not hit the cluster before cleanup is ready.
      child = spawn(path.join(esHome, 'bin', 'elasticsearch'), [], {
        cwd: dirs.root,
        env,
        detached: true,
        stdio: ['ignore', out, out],
        ...(user.current ? {} : { uid: user.uid, gid: user.gid }),
      });
    } finally {
      fs.closeSync(out);
    }
    const pid = child.pid;
    if (pid === undefined) throw new ElasticsearchHarnessError('ES_HARNESS_START_FAILED', `could not spawn ${esHome}/bin/elasticsearch`);
    child.unref();
    let exit: Exit | undefined;
    const reaped = new Promise<void>((resolve) => {
      child?.once('exit', (code, signal) => {
        exit = { code, signal };
        resolve();
      });
    });
    if (options.stopWithProcess ?? true) watchdog = startWatchdog(pid, dirs.root);
    log(`started pid ${pid} (http 127.0.0.1:${httpPort}, transport ${transportPort}, folder ${dirs.root}); waiting for yellow`);

    await waitUntilReady(baseUrl, auth, () => exit, ctx.timeoutMs, options.signal);
    const version = (await fetchVersion(baseUrl, auth)) ?? 'unknown';
    log(`Elasticsearch ${version} is up at ${baseUrl} (user ${ES_USERNAME}) after ${seconds(Date.now() - started)}`);
    return makeRunning({ baseUrl, password, version, pid, httpPort, dirs, watchdog, reaped });
  } catch (err) {
    if (child?.pid !== undefined) await stopProcessGroup(child.pid);
    const aborted = err instanceof ElasticsearchHarnessError && err.code === 'ES_HARNESS_ABORTED';
    const logs = aborted ? '' : logTails(dirs, log);
    watchdog?.disarm();
    if (ctx.keepOnFailure && !aborted) log(`kept ${dirs.root} for inspection (CI_AUDIT_ES_KEEP_FAILED=1)`);
    else fs.rmSync(dirs.root, { recursive: true, force: true });
    removeEmptyPerfDataDir();
    if (/BindException|Address already in use/.test(logs)) throw new PortTakenError('port taken', { cause: err });
    if (err instanceof ElasticsearchHarnessError && !aborted && logs !== '') {
      const where = ctx.keepOnFailure ? `kept in ${dirs.root}` : 'set CI_AUDIT_ES_KEEP_FAILED=1 to keep them';
      throw new ElasticsearchHarnessError(err.code, `${err.message}; its logs are printed above (${where})`, { cause: err });
    }
    throw err;
  }
}

interface Launched {
  baseUrl: string;
  password: string;
  version: string;
  pid: number;
  httpPort: number;
  dirs: RunDirs;
  watchdog: Watchdog | undefined;
  /** Resolves once Node has reaped the launcher: exiting before that leaves a zombie where PID 1 does not reap. */
  reaped: Promise<void>;
}

function makeRunning(r: Launched): RunningElasticsearch {
  const url = new URL(r.baseUrl);
  url.username = ES_USERNAME;
  url.password = r.password;
  let stopping: Promise<void> | undefined;
  return {
    url: url.toString().replace(/\/$/, ''),
    baseUrl: r.baseUrl,
    username: ES_USERNAME,
    password: r.password,
    version: r.version,
    pid: r.pid,
    httpPort: r.httpPort,
    tmpDir: r.dirs.root,
    stop(): Promise<void> {
      stopping ??= (async () => {
        await stopProcessGroup(r.pid);
        await Promise.race([r.reaped, sleep(2000)]);
        fs.rmSync(r.dirs.root, { recursive: true, force: true });
        r.watchdog?.disarm();
        removeEmptyPerfDataDir();
      })();
      return stopping;
    },
  };
}

// ---------------------------------------------------------------------------------------------
// State file (start / status / stop across processes)

export function readState(file = STATE_FILE): ElasticsearchState | undefined {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return undefined;
    throw err;
  }
  const state = JSON.parse(text) as Partial<ElasticsearchState>;
  if (typeof state.pid !== 'number' || typeof state.url !== 'string' || typeof state.tmpdir !== 'string' || typeof state.password !== 'string') {
    throw new ElasticsearchHarnessError('ES_HARNESS_USAGE', `${file} is not a state file of scripts/elasticsearch.ts; remove it`);
  }
  return state as ElasticsearchState;
}

function writeState(state: ElasticsearchState, file = STATE_FILE): void {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(state, null, 2)}\n`, { mode: 0o600 });
  fs.renameSync(tmp, file);
}

/** Stops the cluster a `start` recorded, removes its folder and the state file. Resolves false when there was none. */
export async function stopFromStateFile(file = STATE_FILE, log: (line: string) => void = defaultLog): Promise<boolean> {
  const state = readState(file);
  if (state === undefined) return false;
  if (groupMembers(state.pid).length > 0) {
    if (groupIsElasticsearch(state.pid)) {
      log(`stopping Elasticsearch (pid ${state.pid}, ${state.url})`);
      await stopProcessGroup(state.pid);
    } else {
      log(`pid ${state.pid} is no longer Elasticsearch; only removing the stale state`);
    }
  } else {
    log(`Elasticsearch (pid ${state.pid}) was no longer running; cleaning up`);
  }
  fs.rmSync(state.tmpdir, { recursive: true, force: true });
  fs.rmSync(file, { force: true });
  removeEmptyPerfDataDir();
  return true;
}

export interface ElasticsearchStatus {
  up: boolean;
  url?: string;
  version?: string;
  health?: string;
  reason?: string;
}

/** Whether the cluster a `start` recorded answers: health and version. */
export async function statusFromStateFile(file = STATE_FILE): Promise<ElasticsearchStatus> {
  const state = readState(file);
  if (state === undefined) return { up: false, reason: `no state file ${file} (nothing started)` };
  if (groupMembers(state.pid).length === 0) return { up: false, url: state.url, reason: `process ${state.pid} is gone (run stop to clean up)` };
  const auth = basicAuth(state.username, state.password);
  try {
    const health = field((await getJson(state.url, '/_cluster/health', auth)).body, 'status');
    const version = await fetchVersion(state.url, auth);
    return { up: version !== undefined, url: state.url, version, health: typeof health === 'string' ? health : undefined };
  } catch (err) {
    return { up: false, url: state.url, reason: `process ${state.pid} runs but ${state.url} does not answer: ${err instanceof Error ? err.message : String(err)}` };
  }
}

// ---------------------------------------------------------------------------------------------
// run -- <cmd...>

const SIGNALS = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function exitCodeOf(exit: Exit): number {
  if (exit.code !== null) return exit.code;
  const number = exit.signal ? os.constants.signals[exit.signal] : undefined;
  return number !== undefined ? 128 + number : 1;
}

/**
 * Runs the command with inherited stdio and the given env; resolves its exit code (127: not found).
 * It runs in a process group of its own (like `timeout` does), so a SIGINT/SIGTERM/SIGHUP passed on
 * by the caller reaches the whole command (`bash -c 'sleep 300'` included) exactly once: a Ctrl-C
 * in a terminal reaches only our group, and we pass it on.
 */
function runCommand(command: string[], env: NodeJS.ProcessEnv, onSignal: (handler: (signal: NodeJS.Signals) => void) => void): Promise<number> {
  const [file, ...args] = command;
  if (file === undefined) return Promise.resolve(0);
  return new Promise((resolve) => {
    const child = spawn(file, args, { stdio: 'inherit', env, detached: true });
    // In its own group, the command would outlive us if we were killed: the watchdog prevents that.
    const watchdog = child.pid !== undefined ? startWatchdog(child.pid) : undefined;
    let killTimer: NodeJS.Timeout | undefined;
    let signalled = false;
    onSignal((signal) => {
      if (child.pid === undefined) return;
      signalled = true;
      signalGroup(child.pid, signal);
      // A command that ignores the signal must not keep the cluster alive forever.
      killTimer ??= setTimeout(() => child.pid !== undefined && signalGroup(child.pid, 'SIGKILL'), 15_000);
    });
    child.once('error', (err) => {
      watchdog?.disarm();
      process.stderr.write(`elasticsearch: cannot run ${file}: ${err.message}\n`);
      resolve(errnoCode(err) === 'ENOENT' ? 127 : 126);
    });
    child.once('exit', (code, signal) => {
      watchdog?.disarm();
      if (killTimer) clearTimeout(killTimer);
      // Interrupted: what the command left behind in its group goes too.
      if (signalled && child.pid !== undefined) signalGroup(child.pid, 'SIGTERM');
      resolve(exitCodeOf({ code, signal }));
    });
  });
}

/**
 * Runs `command` against Elasticsearch and resolves its exit code. With ES_URL set, against that
 * cluster, starting nothing. Otherwise against a fresh cluster (ES_URL with credentials and
 * ES_VERSION in the command's environment) that is stopped and removed afterwards whatever
 * happens: success, failure, or SIGINT/SIGTERM/SIGHUP (forwarded to the command first).
 */
export async function runWithElasticsearch(command: string[], options: StartOptions = {}): Promise<number> {
  const log = options.log ?? defaultLog;
  let received: NodeJS.Signals | undefined;
  let forward: ((signal: NodeJS.Signals) => void) | undefined;
  const controller = new AbortController();
  const handler = (signal: NodeJS.Signals): void => {
    if (received === undefined) log(`received ${signal}; ${forward ? 'passing it to the command, then ' : ''}cleaning up`);
    received ??= signal;
    if (forward) forward(signal);
    else controller.abort();
  };
  for (const s of SIGNALS) process.on(s, handler);
  try {
    const external = process.env.ES_URL;
    if (external) {
      log(`ES_URL is set: using the external cluster at ${redactUrl(external)}, starting nothing`);
      return await runCommand(command, process.env, (h) => (forward = h));
    }
    // A typo in the command should not cost a cluster start.
    const [file] = command;
    if (file !== undefined && (file.includes('/') ? !fs.existsSync(file) : which(file) === undefined)) {
      log(`cannot run ${file}: command not found`);
      return 127;
    }
    let es: RunningElasticsearch;
    try {
      es = await startElasticsearch({ ...options, log, signal: controller.signal });
    } catch (err) {
      if (received !== undefined) return 128 + (os.constants.signals[received] ?? 0);
      throw err;
    }
    try {
      if (received !== undefined) return 128 + (os.constants.signals[received] ?? 0);
      const env: NodeJS.ProcessEnv = { ...process.env, ES_URL: es.url, ES_VERSION: es.version };
      const code = await runCommand(command, env, (h) => (forward = h));
      log(`command exited with ${code}; stopping Elasticsearch`);
      return code;
    } finally {
      await es.stop();
      log('stopped and cleaned up');
    }
  } finally {
    for (const s of SIGNALS) process.off(s, handler);
  }
}

// ---------------------------------------------------------------------------------------------
// CLI

const USAGE = `usage: node scripts/elasticsearch.ts <command>
  start            start Elasticsearch, record it in .run/elasticsearch.json, print shell exports
                   (eval "$(node scripts/elasticsearch.ts start)")
  status           report whether the started Elasticsearch is up
  stop             stop it and remove its temporary folder and the state file
  run -- <cmd...>  run <cmd> against a fresh Elasticsearch (ES_URL, ES_VERSION), always clean up;
                   with ES_URL already set, run <cmd> against that cluster instead
environment: CI_AUDIT_ES_VERSION, CI_AUDIT_CACHE_DIR, CI_AUDIT_ES_START_TIMEOUT (s), CI_AUDIT_ES_HEAP,
             CI_AUDIT_ES_SECURITY_FILE, CI_AUDIT_ES_KEEP_FAILED=1, ES_JAVA_HOME / JAVA_HOME, ES_URL (run only)`;

function shellQuote(value: string): string {
  return `'${value.replace(/'/g, `'\\''`)}'`;
}

async function cliStart(): Promise<number> {
  const existing = readState();
  if (existing !== undefined) {
    if (groupMembers(existing.pid).length > 0 && groupIsElasticsearch(existing.pid)) {
      throw new ElasticsearchHarnessError('ES_HARNESS_ALREADY_RUNNING', `Elasticsearch is already running (pid ${existing.pid}, ${existing.url}, state ${STATE_FILE}); run stop first`);
    }
    await stopFromStateFile();
  }
  const controller = new AbortController();
  const abort = (): void => controller.abort();
  for (const s of SIGNALS) process.on(s, abort);
  let es: RunningElasticsearch;
  try {
    es = await startElasticsearch({ stopWithProcess: false, signal: controller.signal });
  } finally {
    for (const s of SIGNALS) process.off(s, abort);
  }
  writeState({ pid: es.pid, url: es.baseUrl, username: es.username, password: es.password, tmpdir: es.tmpDir, version: es.version, startedAt: new Date().toISOString() });
  defaultLog(`recorded in ${STATE_FILE}; stop it with: node scripts/elasticsearch.ts stop`);
  // The only place the password is printed: a developer needs it to talk to the cluster.
  process.stdout.write(`export ES_URL=${shellQuote(es.url)}\nexport ES_VERSION=${shellQuote(es.version)}\n`);
  return 0;
}

async function cliStatus(): Promise<number> {
  const status = await statusFromStateFile();
  if (status.up) {
    process.stdout.write(`up: Elasticsearch ${status.version ?? '?'} at ${status.url ?? '?'}, cluster health ${status.health ?? '?'}\n`);
    return 0;
  }
  process.stdout.write(`down: ${status.reason ?? 'not answering'}\n`);
  return 1;
}

async function cliStop(): Promise<number> {
  if (!(await stopFromStateFile())) defaultLog(`nothing to stop (no ${STATE_FILE})`);
  else defaultLog('stopped and cleaned up');
  return 0;
}

export async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'start':
      return cliStart();
    case 'status':
      return cliStatus();
    case 'stop':
      return cliStop();
    case 'run': {
      const cmd = rest[0] === '--' ? rest.slice(1) : rest;
      if (cmd.length === 0) throw new ElasticsearchHarnessError('ES_HARNESS_USAGE', `run needs a command\n${USAGE}`);
      return runWithElasticsearch(cmd);
    }
    case undefined:
    case '-h':
    case '--help':
      process.stdout.write(`${USAGE}\n`);
      return command === undefined ? 2 : 0;
    default:
      throw new ElasticsearchHarnessError('ES_HARNESS_USAGE', `unknown command "${command}"\n${USAGE}`);
  }
}

if (import.meta.main) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      const message = err instanceof Error ? err.message : String(err);
      const code = err instanceof ElasticsearchHarnessError ? ` [${err.code}]` : '';
      process.stderr.write(`elasticsearch: error${code}: ${message}\n`);
      process.exit(err instanceof ElasticsearchHarnessError && err.code === 'ES_HARNESS_USAGE' ? 2 : 1);
    },
  );
}
