/**
 * Runs in a worker thread: walks one seq range of the usage log on PostgreSQL (walk.ts) on its own
 * connection, so a walk of millions of records uses every core.
 */
import { parentPort, workerData } from 'node:worker_threads';
import pg from 'pg';
import type { RangeResult } from '../../usagelog/walk';
import { walkRange } from './walk';

const input = workerData as { url: string; from: number; to: number; watch: number[] };

async function run(): Promise<RangeResult | { error: string }> {
  const client = new pg.Client({ connectionString: input.url, application_name: 'nia-link verify' });
  try {
    client.on('error', () => undefined); // the statement in flight fails by itself
    await client.connect();
    return await walkRange(client, input.from, input.to, null, new Set(input.watch));
  } catch (err) {
    return { error: (err as Error).message.split('\n')[0] };
  } finally {
    await client.end().catch(() => undefined);
  }
}

void run().then((r) => parentPort!.postMessage(r));
