import { readFileSync } from 'node:fs';
import { sql } from 'drizzle-orm';
import { rawRun } from '../../src/db/dialect';
import * as installation from '../../src/db/repositories/installation';
import { ComplianceService } from '../../src/compliance';
import { Html } from '../../src/http/html';
import { translator } from '../../src/http/i18n';
import { layout } from '../../src/http/views';
import { FormService, renderHtml } from '../../src/forms';
import { listLog } from '../../src/usagelog';
import { buildDelivery, niaKeys, sftpConfig } from '../helpers/sftp';
import { approvedLink, cleanupKeys, makeAgencyKeys, openTestWorld, type AgencyKeys, type AnyWorld } from '../helpers/world';

/**
 * R6.6: nothing a drill makes can pass for production — its console pages, forms, manifests,
 * notices and usage-log records all say 演練 DRILL; a production installation's say nothing of it.
 */
let keys: AgencyKeys;
beforeAll(() => (keys = makeAgencyKeys()));
afterAll(() => cleanupKeys(keys));

async function world(mode: 'drill' | 'production'): Promise<{ w: AnyWorld; id: number; manifest: string; form: string; notice: string }> {
  const w = await openTestWorld();
  await w.cdb.write((tx) => installation.record(tx, mode, new Date()));
  const config = { ...sftpConfig(w.dataDir), database: w.database };
  await niaKeys(config, keys);
  const id = await approvedLink(w, keys);
  const d = await buildDelivery(w, config, id, 5);
  const compliance = new ComplianceService({ cdb: w.cdb, registry: w.registry, clock: w.clock, config });
  await compliance.suspend(id, '演練', 'nia');
  return {
    w,
    id,
    manifest: readFileSync(d.manifest!, 'utf8'),
    form: renderHtml(await new FormService(w.cdb, w.registry, w.clock).model(id)),
    notice: (await compliance.listNotices(id))[0].textZh,
  };
}

describe('a drill is marked everywhere (R6.6)', () => {
  it('R6.6 a drill installation marks its forms, manifests, notices, usage-log records and console pages 演練 DRILL', async () => {
    const { w, manifest, form, notice } = await world('drill');
    try {
      expect(JSON.parse(manifest)).toMatchObject({ drill: '演練 DRILL' });
      expect(form).toContain('演練 DRILL');
      expect(notice.startsWith('【演練 DRILL】')).toBe(true);
      for (const r of await listLog(w.cdb.db, {})) expect(JSON.parse(r.detail)).toMatchObject({ drill: true });
      const page = layout({ t: translator('zh-TW'), lang: 'zh-TW', op: null, path: '/', drill: true }, 'x', new Html(''));
      expect(page).toMatch(/<title>演練 DRILL · /);
      expect(page).toContain('<span class="badge suspended drill" role="note">演練 DRILL</span>');
      // In a write transaction (reads outside one cannot write on SQLite). What the database said
      // refusing (drizzle may carry it as its error's cause); 'not refused' when the statement ran.
      const refusal = (p: Promise<unknown>): Promise<string> => p.then(() => 'not refused', (e: Error) => [e.message, (e.cause as Error | undefined)?.message].join('\n'));
      expect(await refusal(w.cdb.write((tx) => rawRun(tx, sql`UPDATE installation SET mode = 'production'`)))).toMatch(/fixed when it is initialised/);
      expect(await refusal(w.cdb.write((tx) => rawRun(tx, sql`DELETE FROM installation`)))).toMatch(/fixed when it is initialised/);
      expect(await installation.recorded(w.cdb.db)).toBe('drill');
    } finally {
      await w.close();
    }
  });

  it('R6.6 a production installation carries no drill mark', async () => {
    const { w, manifest, form, notice } = await world('production');
    try {
      expect(JSON.parse(manifest).drill).toBeUndefined();
      expect(form).not.toContain('DRILL');
      expect(notice).not.toContain('DRILL');
      for (const r of await listLog(w.cdb.db, {})) expect(JSON.parse(r.detail).drill).toBeUndefined();
      expect(layout({ t: translator('zh-TW'), lang: 'zh-TW', op: null, path: '/' }, 'x', new Html(''))).not.toContain('DRILL');
    } finally {
      await w.close();
    }
  });
});
