import { readFileSync } from 'node:fs';

// Read once from package.json so the version lives in one place.
const pkg = JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string };

export const version: string = pkg.version;
