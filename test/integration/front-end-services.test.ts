import { execFileSync } from 'node:child_process';
import path from 'node:path';
import { loadConfig } from '../../src/config';
import { buildFrontEndServices, buildServices } from '../../src/services';
import { openTestWorld, type AnyWorld } from '../helpers/world';

// A front-end role (SFTP, online query) is built from the registry, its change notices and the
// outbox, nothing more: no service that signs or builds files, pushes or mails them, or changes a
// link's compliance state exists in those processes.

let w: AnyWorld;
beforeAll(async () => void (w = await openTestWorld()));
afterAll(async () => w?.close());

it('the front-end roles get the registry, its change notices and the outbox only', async () => {
  const config = loadConfig({ dataDir: w.dataDir }, { NIA_LINK_LOG_LEVEL: 'silent' });
  const front = buildFrontEndServices(config, w.cdb, w.clock);
  expect(Object.keys(front).sort()).toEqual(['linkEvents', 'outbox', 'registry']);
  const all = buildServices(config, w.cdb, w.clock);
  for (const k of ['extracts', 'pushes', 'compliance', 'usageLog', 'rules', 'vendors', 'forms']) expect(all).toHaveProperty(k);
  expect(all.outbox.root).toBe(front.outbox.root);
});

it('the SFTP and query front ends load neither the PDF renderer, the mailer nor BullMQ until they use them (less heap for every full garbage collection to mark)', () => {
  // What a front end's modules load, without starting anything (dist, as the processes run it).
  const root = path.resolve(__dirname, '../..');
  const probe = (entry: string) =>
    execFileSync(process.execPath, ['-e', `require(${JSON.stringify(entry)}); process.stdout.write(JSON.stringify(Object.keys(require.cache)))`], { encoding: 'utf8' });
  for (const entry of ['dist/src/sftp/server.js', 'dist/src/query/server.js', 'dist/src/services.js']) {
    const loaded = JSON.parse(probe(path.join(root, entry))) as string[];
    expect(loaded.some((m) => m.includes(`${path.sep}dist${path.sep}src${path.sep}`))).toBe(true);
    expect(loaded.filter((m) => /node_modules[\\/](pdfkit|fontkit|nodemailer|bullmq)[\\/]/.test(m))).toEqual([]);
  }
});
