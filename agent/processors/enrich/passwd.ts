// The host's account database (/etc/passwd format) as uid -> name. Pure parsing; the processor reads the file.
export function parsePasswd(text: string): Map<string, string> {
  const byUid = new Map<string, string>();
  for (const line of text.split('\n')) {
    if (line === '' || line.startsWith('#')) continue;
    const parts = line.split(':');
    const name = parts[0];
    const uid = parts[2];
    if (name === undefined || uid === undefined || !/^\d+$/.test(uid)) continue;
    // The first entry for a uid wins, as getpwuid does.
    if (!byUid.has(uid)) byUid.set(uid, name);
  }
  return byUid;
}
