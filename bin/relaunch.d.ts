/** Node.js options the agent runs with (bin/relaunch.js). */
export const agentNodeOptions: readonly string[];
/** Environment variables the agent runs with (bin/relaunch.js). */
export const agentEnvironment: Readonly<Record<string, string>>;
/** Turns the compile cache on and relaunches the process with the `options` and `environment` variables it lacks (bin/relaunch.js). */
export function relaunch(options: readonly string[], environment?: Readonly<Record<string, string>>): void;
