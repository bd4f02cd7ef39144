import { Worker } from 'node:worker_threads';
import type { Logger } from '../logger';
import { threadScript } from '../paths';
import type { CheckpointThreadInput } from './checkpoint-thread';

const RESTART_MS = 1000;

/**
 * Checkpoints `file`'s WAL every `everyMs` from a thread of its own (db/checkpoint-thread.ts), for
 * roles whose writers turn automatic checkpoints off because a checkpoint waits for the disk. The
 * thread keeps the process alive until `stop()`: a role that fails to start stops it too.
 */
export function startCheckpointer(file: string, everyMs: number, log: Logger): { stop: () => Promise<void> } {
  let stopping = false;
  let w: Worker;
  let exited: Promise<void>;
  const start = () => {
    w = new Worker(threadScript('db/checkpoint-thread'), { workerData: { file, everyMs } satisfies CheckpointThreadInput });
    exited = new Promise<void>((resolve) => w.once('exit', () => resolve()));
    w.on('message', (m: { error?: string }) => m.error && log.warn({ err: m.error }, 'WAL checkpoint failed'));
    w.on('error', (err) => log.error({ err: err.message }, 'the WAL checkpoint thread failed'));
    // Without it the WAL of writers that never checkpoint would grow without bound: start another.
    w.once('exit', () => !stopping && setTimeout(() => !stopping && start(), RESTART_MS).unref());
  };
  start();
  return {
    stop: () => {
      stopping = true;
      w.postMessage('stop');
      return exited;
    },
  };
}
