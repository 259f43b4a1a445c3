// Writes deploy/kibana/ci-audit.ndjson from the saved query table (admin/kibana/objects.ts), or with
// --check exits 1 when the committed file differs from what the table gives.
//   node scripts/kibana-objects.ts [--check]
import { readFile, writeFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { buildSavedObjects, toNdjson } from '../admin/kibana/objects.ts';

const file = fileURLToPath(new URL('../deploy/kibana/ci-audit.ndjson', import.meta.url));
const generated = toNdjson(buildSavedObjects());

if (process.argv.includes('--check')) {
  const committed = await readFile(file, 'utf8').catch(() => '');
  if (committed !== generated) {
    process.stderr.write(`${file} is out of date: run node scripts/kibana-objects.ts\n`);
    process.exitCode = 1;
  }
} else {
  await writeFile(file, generated);
  process.stdout.write(`wrote ${file}\n`);
}
