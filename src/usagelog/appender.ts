import { Worker } from 'node:worker_threads';
import { threadScript } from '../paths';
import type { AppenderReply, AppenderRequest, AppenderThreadInput } from './appender-thread';
import type { LogEntry } from './log';

const APPENDER_THREAD = threadScript('usagelog/appender-thread');

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}

/**
 * Appends usage-log records from a worker thread, for a server that answers many small requests (the
 * online query): the records of every request that arrives in one turn of the event loop go to the
 * thread as one batch and into one transaction (group commit), and each caller's promise settles only
 * once its record is committed, so nothing is answered unlogged. The hashing, the insert and any wait
 * for the write lock happen off the thread that serves requests.
 *
 * If the thread fails, the records it had not confirmed are reported as failed (their callers answer
 * with an error) and the next batch starts a new thread.
 */
export class LogAppender {
  private worker?: Worker;
  private readonly inFlight = new Map<number, Waiter[]>();
  private queued: { entry: LogEntry; at: number }[] = [];
  private waiters: Waiter[] = [];
  private batch = 0;
  private closed = false;

  constructor(private readonly file: string) {
    this.thread(); // started now, so the first request does not wait for it to load
  }

  append(entry: LogEntry, now: Date): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the usage log is closed'));
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.send());
      this.queued.push({ entry, at: now.getTime() });
      this.waiters.push({ resolve, reject });
    });
  }

  /** Commits what was appended, then stops the thread. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.send();
    this.closed = true;
    const w = this.worker;
    if (!w) return;
    await new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      w.postMessage({ close: true } satisfies AppenderRequest);
    });
  }

  private send(): void {
    if (this.queued.length === 0) return;
    const records = this.queued;
    const waiters = this.waiters;
    this.queued = [];
    this.waiters = [];
    const batch = ++this.batch;
    this.inFlight.set(batch, waiters);
    this.thread().postMessage({ batch, records } satisfies AppenderRequest);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(APPENDER_THREAD, { workerData: { file: this.file } satisfies AppenderThreadInput });
    w.on('message', (m: AppenderReply) => {
      const waiters = this.inFlight.get(m.batch) ?? [];
      this.inFlight.delete(m.batch);
      const err = m.error === undefined ? undefined : new Error(`the usage log could not be written: ${m.error}`);
      for (const x of waiters) (err ? x.reject(err) : x.resolve());
    });
    w.on('error', (err) => this.lost(w, err));
    w.on('exit', (code) => this.lost(w, new Error(`the usage-log thread stopped (exit code ${code})`)));
    this.worker = w;
    return w;
  }

  /** The thread is gone: what it had not confirmed did not happen; the next batch starts another. */
  private lost(w: Worker, err: Error): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    for (const waiters of this.inFlight.values()) for (const x of waiters) x.reject(err);
    this.inFlight.clear();
  }
}
