import { isValidDate } from '../../domain';
import type { LogQuery } from '../data';

/** JSON schemas shared by the pages and the API (fastify validates every request against its route's). */

export const ID_PARAMS = { type: 'object', properties: { id: { type: 'integer', minimum: 1, maximum: 2 ** 53 - 1 } }, required: ['id'] } as const;

const DATE = { type: 'string', pattern: '^(\\d{4}-\\d{2}-\\d{2})?$' } as const;

export const LOG_QUERY = {
  type: 'object',
  properties: {
    link: { anyOf: [{ type: 'integer', minimum: 1 }, { type: 'string', maxLength: 0 }] },
    agency: { type: 'string', maxLength: 20 },
    type: { type: 'string', maxLength: 64 },
    actor: { type: 'string', maxLength: 64 },
    from: DATE,
    to: DATE,
    before: { type: 'integer', minimum: 1 },
    limit: { type: 'integer', minimum: 1, maximum: 500 },
    lang: { type: 'string' },
  },
} as const;

/** The query string of the log's filter form: an empty link field means any link. */
export type LogQueryString = Omit<LogQuery, 'link'> & { link?: number | '' };

/** Empty form fields mean "any". */
export function logQuery(q: LogQueryString): LogQuery {
  for (const d of [q.from, q.to]) if (d && !isValidDate(d)) throw Object.assign(new Error(`'${d}' is not a date (YYYY-MM-DD)`), { statusCode: 400 });
  return {
    link: typeof q.link === 'number' ? q.link : undefined,
    agency: q.agency || undefined,
    type: q.type || undefined,
    actor: q.actor || undefined,
    from: q.from || undefined,
    to: q.to || undefined,
    before: q.before,
    limit: q.limit,
  };
}
