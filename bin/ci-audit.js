#!/usr/bin/env node
// The installed entry point. Sources are TypeScript that Node.js >= 22.18 runs directly
// (type stripping), so there is no build step between a checkout and a running agent.
import { main } from '../cli/main.ts';

process.exitCode = await main(process.argv);
