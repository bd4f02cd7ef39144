import pino from 'pino';

/** Operational log: JSON on stderr, no personal data (access records go to the usage log). */
export function createLogger(level: string) {
  return pino({ level, base: { service: 'nia-link' }, redact: { paths: ['*.password', '*.secret', '*.privateKey', '*.hmacSecret'], censor: '[redacted]' } }, pino.destination(2));
}
export type Logger = ReturnType<typeof createLogger>;
