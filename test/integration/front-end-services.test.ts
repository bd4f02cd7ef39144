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
