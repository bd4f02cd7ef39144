import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { FastifyAdapter } from '@bull-board/fastify';
import type { Queue } from 'bullmq';
import type { FastifyInstance, RouteOptions } from 'fastify';
import type { OperatorRole } from '../operators';
import { ALL_ROLES, OPERATE, protect } from '../auth';
import type { ConsoleContext } from '../context';

export const QUEUES_PATH = '/queues';
export const READ_ONLY_PATH = '/queues/read-only';

/** What each queue does, as the board shows it. */
const DESCRIPTIONS: Record<string, string> = {
  extract: '萃取資料檔 · builds the encrypted extract files of links',
  deliver: '推送 · sftp-push and e-mail of built deliveries',
  maintenance: '維護 · compliance sweep, outbox purge, usage-log checkpoints and anomaly scan',
};

/**
 * The board's state-changing calls operators and admins may make: retry, promote, clean, pause and
 * resume. Adding or editing jobs, emptying or obliterating a queue, concurrency, rate limits and job
 * schedulers (which the scheduler rebuilds from the database anyway) are refused to everyone.
 */
const OPERATOR_WRITES = [
  /\/api\/queues\/(pause|resume)$/,
  /\/api\/queues\/:queueName\/(pause|resume|promote)$/,
  /\/api\/queues\/:queueName\/(retry|clean)\/:queueStatus$/,
  /\/api\/queues\/:queueName\/:jobId\/(retry|clean|promote)$/,
];

function rolesFor(route: RouteOptions): readonly OperatorRole[] {
  const methods = [route.method].flat();
  if (methods.every((m) => m === 'GET' || m === 'HEAD')) return ALL_ROLES;
  if (route.url.startsWith(READ_ONLY_PATH)) return [];
  return OPERATOR_WRITES.some((re) => re.test(route.url)) ? OPERATE : [];
}

function board(queues: readonly Queue[], basePath: string, readOnly: boolean): FastifyAdapter {
  const serverAdapter = new FastifyAdapter();
  serverAdapter.setBasePath(basePath);
  createBullBoard({
    queues: queues.map((q) => new BullMQAdapter(q, { readOnlyMode: readOnly, description: DESCRIPTIONS[q.name] ?? '', displayName: q.name })),
    serverAdapter,
    options: {
      uiConfig: {
        boardTitle: readOnly ? 'nia-link queues (read-only)' : 'nia-link queues',
        miscLinks: [{ text: '← nia-link console', url: '/' }],
        hideDocsLink: true,
      },
    },
  });
  return serverAdapter;
}

/**
 * bull-board behind the console login: operators and admins get the working board at /queues;
 * auditors are sent to a read-only board at /queues/read-only (its queues are in bull-board's
 * readOnlyMode), and any state-changing call of theirs is refused before bull-board sees it.
 */
export async function queueRoutes(app: FastifyInstance, ctx: ConsoleContext): Promise<void> {
  const queues = Object.values(ctx.queues);
  protect(app, ctx, { kind: 'queues', rolesFor, originSuffices: true });

  app.addHook('onRequest', async (req, reply) => {
    const url = req.routeOptions.url ?? '';
    if (req.operator?.role === 'auditor' && req.method === 'GET' && !url.startsWith(READ_ONLY_PATH) && !url.includes('/api/') && !url.includes('/static/')) {
      return reply.redirect(READ_ONLY_PATH + req.url.slice(QUEUES_PATH.length), 303);
    }
  });
  // bull-board's UI injects <style> elements and style attributes at run time (blocked, it renders
  // unstyled): styles may be inline here, scripts still only from our origin.
  app.addHook('onSend', async (_req, reply) => {
    reply.header('Content-Security-Policy', "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; font-src 'self'; connect-src 'self'; base-uri 'self'; form-action 'self'; frame-ancestors 'none'");
  });

  await app.register(board(queues, READ_ONLY_PATH, true).registerPlugin(), { prefix: READ_ONLY_PATH });
  await app.register(board(queues, QUEUES_PATH, false).registerPlugin(), { prefix: QUEUES_PATH });
}
