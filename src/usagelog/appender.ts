import type { Worker as ClusterWorker } from 'node:cluster';
import { Worker } from 'node:worker_threads';
import type { Logger } from '../logger';
import { threadScript } from '../paths';
import type { AppenderReply, AppenderRequest, AppenderThreadInput } from './appender-thread';
import type { ControlDb } from '../db';
import { appendLogMany, type LogEntry } from './log';

const APPENDER_THREAD = threadScript('usagelog/appender-thread');

/** Where a server's usage-log records go: the promise settles once the record is committed. */
export interface RecordSink {
  append(entry: LogEntry, now: Date): Promise<void>;
  close(): Promise<void>;
}

interface Waiter {
  resolve: () => void;
  reject: (err: Error) => void;
}
type Queued = { entry: LogEntry; at: number };

/**
 * Group commit: the records appended in one turn of the event loop leave as one batch, and each
 * caller's promise settles with its batch's outcome. Subclasses say where a batch goes.
 */
abstract class BatchingSink implements RecordSink {
  private readonly inFlight = new Map<number, Waiter[]>();
  private queued: Queued[] = [];
  private waiters: Waiter[] = [];
  private batch = 0;
  private drained?: () => void;
  protected closed = false;

  append(entry: LogEntry, now: Date): Promise<void> {
    if (this.closed) return Promise.reject(new Error('the usage log is closed'));
    return new Promise((resolve, reject) => {
      if (this.queued.length === 0) setImmediate(() => this.flush());
      this.queued.push({ entry, at: now.getTime() });
      this.waiters.push({ resolve, reject });
    });
  }

  abstract close(): Promise<void>;

  /** Send what is queued now. */
  protected flush(): void {
    if (this.queued.length === 0) return;
    const records = this.queued;
    const batch = ++this.batch;
    this.inFlight.set(batch, this.waiters);
    this.queued = [];
    this.waiters = [];
    try {
      this.deliver(batch, records);
    } catch (err) {
      this.settle(batch, err as Error);
    }
  }

  protected abstract deliver(batch: number, records: Queued[]): void;

  /** A batch's outcome: committed, or not (`err`). */
  protected settle(batch: number, err?: Error): void {
    const waiters = this.inFlight.get(batch) ?? [];
    this.inFlight.delete(batch);
    for (const x of waiters) (err ? x.reject(err) : x.resolve());
    if (this.inFlight.size === 0) this.drained?.();
  }

  /** Every batch not yet confirmed did not happen. */
  protected failInFlight(err: Error): void {
    for (const waiters of this.inFlight.values()) for (const x of waiters) x.reject(err);
    this.inFlight.clear();
    this.drained?.();
  }

  /** Resolves once every batch sent so far has its outcome. */
  protected settled(): Promise<void> {
    if (this.inFlight.size === 0) return Promise.resolve();
    return new Promise((resolve) => (this.drained = resolve));
  }
}

/**
 * Appends usage-log records from a worker thread, for a server that answers many small requests (the
 * online query): each batch goes into one transaction there, so the hashing, the insert and any wait
 * for the write lock happen off the thread that serves requests, and nothing is answered unlogged.
 * If the thread fails, the records it had not confirmed are reported as failed (their callers answer
 * with an error) and the next batch starts a new thread.
 */
export class LogAppender extends BatchingSink {
  private worker?: Worker;
  private started!: Promise<void>;
  private closing?: Promise<void>;

  /** `log` hears of a thread that dies (its callers are told through their promises). */
  constructor(
    private readonly file: string,
    private readonly log?: Logger,
  ) {
    super();
    this.thread(); // started now, so the first request does not wait for it to load
  }

  /** Resolves once the thread has opened the database; rejects if it could not. */
  ready(): Promise<void> {
    return this.started;
  }

  /** Commits what was appended, then stops the thread. */
  close(): Promise<void> {
    this.closing ??= this.stop();
    return this.closing;
  }

  private async stop(): Promise<void> {
    this.flush();
    this.closed = true;
    const w = this.worker;
    if (!w) return;
    await new Promise<void>((resolve) => {
      w.once('exit', () => resolve());
      w.postMessage({ close: true } satisfies AppenderRequest);
    });
  }

  protected deliver(batch: number, records: Queued[]): void {
    this.thread().postMessage({ batch, records } satisfies AppenderRequest);
  }

  private thread(): Worker {
    if (this.worker) return this.worker;
    const w = new Worker(APPENDER_THREAD, { workerData: { file: this.file } satisfies AppenderThreadInput });
    let ready: () => void;
    let failed: (err: Error) => void;
    this.started = new Promise<void>((resolve, reject) => ((ready = resolve), (failed = reject)));
    this.started.catch(() => undefined); // a caller that never asks is told through append instead
    w.on('message', (m: AppenderReply) => {
      if ('ready' in m) return ready();
      this.settle(m.batch, m.error === undefined ? undefined : new Error(`the usage log could not be written: ${m.error}`));
    });
    w.on('error', (err) => this.lost(w, new Error(`the usage-log thread failed: ${err?.message || String(err)}`), failed));
    w.on('exit', (code) => this.lost(w, new Error(`the usage-log thread stopped (exit code ${code})`), failed));
    this.worker = w;
    return w;
  }

  private lost(w: Worker, err: Error, failed: (err: Error) => void): void {
    if (this.worker !== w) return;
    this.worker = undefined;
    failed(err);
    if (!this.closed) this.log?.error({ err: err.message }, 'usage-log appender thread failed; the next batch starts another');
    this.failInFlight(err);
  }
}

/**
 * Group commit through the control database's own write runner, in this thread: for PostgreSQL,
 * where waiting for the write lock and the disk is the server's and blocks nothing here. One
 * transaction is in flight at a time; the batches that arrive meanwhile go together in the next, so
 * a burst of look-ups makes a few large transactions rather than many that queue for the lock (and
 * for the pool's connections, which the look-ups' reads need too). Each caller hears whether its
 * record committed.
 */
export class TxLogAppender extends BatchingSink {
  private waiting: { batch: number; records: Queued[] }[] = [];
  private writing = false;

  constructor(private readonly cdb: ControlDb) {
    super();
  }

  ready(): Promise<void> {
    return Promise.resolve();
  }

  /** Commits what was appended; appends after this are refused. */
  async close(): Promise<void> {
    this.flush();
    this.closed = true;
    await this.settled();
  }

  protected deliver(batch: number, records: Queued[]): void {
    this.waiting.push({ batch, records });
    if (!this.writing) void this.write();
  }

  private async write(): Promise<void> {
    this.writing = true;
    while (this.waiting.length > 0) {
      const next = this.waiting;
      this.waiting = [];
      const records = next.flatMap((b) => b.records.map((r) => ({ entry: r.entry, now: new Date(r.at) })));
      let failure: Error | undefined;
      try {
        await this.cdb.write((tx) => appendLogMany(tx, records));
      } catch (err) {
        failure = new Error(`the usage log could not be written: ${(err as Error).message}`);
      }
      for (const b of next) this.settle(b.batch, failure);
    }
    this.writing = false;
  }
}

/** IPC between a cluster worker's ClusterLogAppender and its primary (serveClusterAppends). */
type AppendMessage = { appendLog: { batch: number; records: Queued[] } };
type AppendedMessage = { logAppended: { batch: number; error?: string } };

/**
 * In a worker process of a cluster: the batches go to the primary, whose one LogAppender commits the
 * records of all workers (serveClusterAppends), so the workers never contend for the write lock.
 */
export class ClusterLogAppender extends BatchingSink {
  private readonly onMessage = (m: unknown) => {
    const r = (m as Partial<AppendedMessage> | null)?.logAppended;
    if (r && typeof r.batch === 'number') this.settle(r.batch, r.error === undefined ? undefined : new Error(r.error));
  };
  private readonly onDisconnect = () => this.failInFlight(new Error('the primary process is gone'));

  constructor() {
    super();
    if (!process.send) throw new Error('ClusterLogAppender runs in a cluster worker');
    process.on('message', this.onMessage);
    process.on('disconnect', this.onDisconnect);
  }

  /** Waits for the outcome of everything appended, then stops listening. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.flush();
    this.closed = true;
    await this.settled();
    process.off('message', this.onMessage);
    process.off('disconnect', this.onDisconnect);
  }

  protected deliver(batch: number, records: Queued[]): void {
    if (!process.connected) return this.settle(batch, new Error('the primary process is gone'));
    // A failed send (the primary went away meanwhile) fails the batch instead of the process.
    process.send!({ appendLog: { batch, records } } satisfies AppendMessage, undefined, {}, (err: Error | null) => err && this.settle(batch, err));
  }
}

/** In the primary: appends what a worker's ClusterLogAppender sends, and answers each batch. */
export function serveClusterAppends(worker: ClusterWorker, appender: RecordSink): void {
  worker.on('message', (m: unknown) => {
    const a = (m as Partial<AppendMessage> | null)?.appendLog;
    if (!a || typeof a.batch !== 'number' || !Array.isArray(a.records)) return;
    // A worker that died meanwhile cannot be answered; its look-ups were not answered either.
    const answer = (error?: string) => worker.isConnected() && worker.send({ logAppended: { batch: a.batch, ...(error === undefined ? {} : { error }) } } satisfies AppendedMessage, undefined, {}, () => undefined);
    Promise.all(a.records.map((r) => appender.append(r.entry, new Date(r.at)))).then(
      () => answer(),
      (err: Error) => answer(err.message),
    );
  });
}
