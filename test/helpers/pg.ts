import { randomBytes } from 'node:crypto';
import { createConnection, createServer, type Socket } from 'node:net';
import pg from 'pg';

/** The admin connection the PostgreSQL tests create their scratch databases with. */
export const PG_ADMIN_URL = process.env.NIA_TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';

const SCRATCH = /^nia_test_[0-9a-f]{12}$/;

export interface ScratchDb {
  readonly name: string;
  readonly url: string;
  drop(): Promise<void>;
}

const admin = <T>(fn: (c: pg.Client) => Promise<T>): Promise<T> => withPg(PG_ADMIN_URL, fn);

/** A new, empty database `nia_test_<random>` on the test server; `drop` removes it and nothing else. */
export async function createScratchDb(): Promise<ScratchDb> {
  const name = `nia_test_${randomBytes(6).toString('hex')}`;
  await admin((c) => c.query(`CREATE DATABASE ${name}`));
  const u = new URL(PG_ADMIN_URL);
  u.pathname = `/${name}`;
  return {
    name,
    url: u.toString(),
    drop: async () => {
      if (!SCRATCH.test(name)) throw new Error(`refusing to drop ${name}: not a scratch database`);
      await admin((c) => c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`));
    },
  };
}

/**
 * A TCP proxy in front of the database at `url`, standing for the network and the server's
 * restarts: `restart(ms)` drops every connection, as a server restart does, and refuses new ones
 * for `ms`; `refuse(true)` refuses them until `refuse(false)`. `url` reaches the database through it.
 */
export interface PgProxy {
  readonly url: string;
  restart(downMs: number): Promise<void>;
  refuse(down: boolean): void;
  close(): Promise<void>;
}

export async function pgProxy(url: string): Promise<PgProxy> {
  const target = new URL(url);
  let sockets = new Set<Socket>();
  let up = true;
  const proxy = createServer((client) => {
    if (!up) return client.destroy();
    const server = createConnection({ host: target.hostname, port: Number(target.port || 5432) });
    for (const s of [client, server]) {
      sockets.add(s);
      s.on('error', () => undefined);
      s.on('close', () => sockets.delete(s));
    }
    client.pipe(server).pipe(client);
    client.on('close', () => server.destroy());
    server.on('close', () => client.destroy());
  });
  await new Promise<void>((r) => proxy.listen(0, '127.0.0.1', () => r()));
  const via = new URL(url);
  via.hostname = '127.0.0.1';
  via.port = String((proxy.address() as { port: number }).port);
  const dropAll = () => {
    for (const s of sockets) s.destroy();
    sockets = new Set();
  };
  return {
    url: via.toString(),
    restart(downMs) {
      up = false;
      dropAll();
      return new Promise((r) => setTimeout(() => ((up = true), r()), downMs));
    },
    refuse(down) {
      up = !down;
    },
    async close() {
      dropAll();
      await new Promise((r) => proxy.close(r));
    },
  };
}

/** Run `fn` on a connection of its own to the PostgreSQL database at `url` (a test's own statements). */
export async function withPg<T>(url: string, fn: (c: pg.Client) => Promise<T>): Promise<T> {
  const c = new pg.Client({ connectionString: url });
  await c.connect();
  try {
    return await fn(c);
  } finally {
    await c.end();
  }
}
