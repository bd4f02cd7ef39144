/** The parts of the service a process can run; `nia-link start` runs all of them by default. */
export const ROLES = ['http', 'worker', 'scheduler', 'sftp', 'query'] as const;
export type Role = (typeof ROLES)[number];
