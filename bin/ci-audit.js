#!/usr/bin/env node
// The installed entry point. Sources are TypeScript that Node.js >= 22.18 runs directly
// (type stripping), so there is no build step between a checkout and a running agent.
// `agent run` first relaunches itself with the options that bound the agent's memory; every
// command runs with the compile cache (bin/relaunch.js). The command line is imported after that,
// so that its modules are compiled under the cache.
import { agentEnvironment, agentNodeOptions, relaunch } from './relaunch.js';

if (process.argv[2] === 'agent' && process.argv[3] === 'run') relaunch(agentNodeOptions, agentEnvironment);
else relaunch([]);
const { main } = await import('../cli/main.ts');
process.exitCode = await main(process.argv);
