// A GitHub Actions job's environment as the runner sets it (plus a token the hook must not read).
export const githubEnv = {
  GITHUB_ACTIONS: 'true',
  GITHUB_RUN_ID: '9876543210',
  GITHUB_RUN_ATTEMPT: '2',
  GITHUB_JOB: 'build',
  GITHUB_WORKFLOW: 'CI',
  GITHUB_REPOSITORY: 'acme/shop',
  GITHUB_SERVER_URL: 'https://github.com',
  GITHUB_REF: 'refs/heads/main',
  GITHUB_SHA: '3f786850e387550fdab836ed7e6dc881de23001b',
  GITHUB_ACTOR: 'alice',
  GITHUB_TRIGGERING_ACTOR: 'bob',
  RUNNER_NAME: 'runner-01',
  GITHUB_TOKEN: 'ghs_notreadbythehookatall0000000000000000',
};
