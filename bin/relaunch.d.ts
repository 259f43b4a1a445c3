/** Node.js options the agent runs with (bin/relaunch.js). */
export const agentNodeOptions: readonly string[];
/** Turns the compile cache on and relaunches the process with the `options` it lacks (bin/relaunch.js). */
export function relaunch(options: readonly string[]): void;
