// Finds the files a file source follows: glob patterns in, absolute paths out. Also works out which
// directories to watch for the patterns, so that a file created later is noticed.
import { glob } from 'node:fs/promises';
import { basename, matchesGlob } from 'node:path';

export interface FileMatcher {
  /** Absolute glob patterns (the config loader resolves relative ones). */
  include: readonly string[];
  /**
   * Patterns of files to leave alone. A pattern with a `/` is matched against the whole path
   * (`**\/*.gz` excludes every .gz file); one without is matched against the file name (`*.gz`).
   */
  exclude: readonly string[];
}

/** True when `path` (absolute) is one of the files the matcher follows. */
export function matchesFile(path: string, m: FileMatcher): boolean {
  if (!m.include.some((p) => matchesGlob(path, p))) return false;
  const name = basename(path);
  return !m.exclude.some((p) => (p.includes('/') ? matchesGlob(path, p) : matchesGlob(name, p)));
}

/** The matching paths that exist now, sorted. Patterns whose directory does not exist match nothing. */
export async function findFiles(m: FileMatcher): Promise<string[]> {
  const found = new Set<string>();
  for (const pattern of m.include) {
    for await (const path of glob(pattern)) {
      if (matchesFile(path, m)) found.add(path);
    }
  }
  return [...found].sort();
}

const globChars = /[*?[\]{}!()]/;

export interface WatchPlan {
  /** Directories to watch: the part of each pattern before its first glob segment. */
  roots: string[];
  /** Subdirectory levels below the roots that the patterns reach; undefined when a `**` makes it unlimited. */
  depth: number | undefined;
}

export function watchPlan(include: readonly string[]): WatchPlan {
  const parts = include.map((pattern) => {
    const segments = pattern.split('/');
    let i = segments.findIndex((s) => globChars.test(s));
    // A pattern without glob characters names one file: watch its directory.
    if (i === -1) i = segments.length - 1;
    const rest = segments.slice(i);
    return { root: segments.slice(0, i).join('/') || '/', levels: rest.includes('**') ? undefined : rest.length - 1 };
  });
  // Keep only the outermost roots: a watch on a directory covers the directories below it.
  const isInside = (dir: string, ancestor: string): boolean => dir !== ancestor && dir.startsWith(ancestor === '/' ? '/' : ancestor + '/');
  const roots = [...new Set(parts.map((p) => p.root))].filter((r, _i, all) => !all.some((o) => isInside(r, o))).sort();
  let depth: number | undefined = 0;
  for (const p of parts) {
    if (p.levels === undefined) return { roots, depth: undefined };
    const root = roots.find((r) => r === p.root || isInside(p.root, r))!;
    const below = root === p.root ? 0 : p.root.slice(root.length).split('/').filter(Boolean).length;
    depth = Math.max(depth, below + p.levels);
  }
  return { roots, depth };
}
