import type { Config } from '../config';
import type { ControlDb, Db } from '../db';
import * as store from '../db/repositories/anomalies';
import * as repo from '../db/repositories/usageLog';
import { addDays, startOfTaipeiDay, taipeiDate } from '../domain';

export type AnomalySettings = Config['anomaly'];
export type AnomalyRow = store.AnomalyRow;
type Row = repo.UsageLogRow;

export const RULES = ['refused-ip', 'failed-logins', 'volume', 'off-hours', 'repeated-download', 'inactive-link', 'query-volume', 'query-distinct', 'query-off-hours', 'query-not-found', 'batch-large', 'batch-refused'] as const;
export type RuleName = (typeof RULES)[number];

/** One rule's finding over a group of records: stored under `key`, so a repeat updates it. */
export interface Hit {
  rule: RuleName;
  key: string;
  linkId: number | null;
  agency: string | null;
  ip: string | null;
  summary: string;
  /** Every record that shows it (those seen in earlier scans included). */
  seqs: number[];
  detail: Record<string, unknown>;
}

/** Evidence kept per anomaly; `count` goes on counting past it. */
const EVIDENCE_CAP = 1000;
const BATCH = 5000;
/** mayUse's refusals: a login refused for one of these was an attempt on a link that may not be used. */
const LINK_UNUSABLE = new Set(['link.not-active', 'link.period.ended', 'link.period.not-started', 'link.ending']);
const STATUS_EVENTS: Record<string, string> = { 'link.approved': 'active', 'link.resumed': 'active', 'link.suspended': 'suspended', 'link.terminated': 'terminated', 'link.rejected': 'rejected' };
/** What an agency (or its use of a link) does, as opposed to what NIA does to the link. */
const isUse = (type: string) => type === 'auth.succeeded' || type === 'file.downloaded' || type === 'file.pushed' || type.startsWith('query.') || type === 'batch.received';

function detailOf(r: Row): Record<string, any> {
  try {
    const d = JSON.parse(r.detail);
    return typeof d === 'object' && d !== null ? d : {};
  } catch {
    return {};
  }
}
const bytesOf = (r: Row) => {
  const b = detailOf(r).bytes;
  return typeof b === 'number' && Number.isFinite(b) ? b : 0;
};
const count = (v: unknown): number | null => (typeof v === 'number' && Number.isFinite(v) && v >= 0 ? v : null);
/** Identifiers a look-up asked for, and how many of them matched a record (null: a record written before `found` was). */
const lookupOf = (r: Row) => {
  const d = detailOf(r);
  return { ids: count(d.ids) ?? 0, found: count(d.found), idHashes: Array.isArray(d.idHashes) ? d.idHashes.filter((h): h is string => typeof h === 'string') : [] };
};
const ANSWERED = ['query.answered'];
const opensOf = (r: Row) => {
  const n = detailOf(r).opens;
  return typeof n === 'number' && Number.isInteger(n) && n > 1 ? n : 1;
};
const day = (at: string) => taipeiDate(new Date(at));
const minus = (at: string, ms: number) => new Date(Date.parse(at) - ms).toISOString();
const mib = (n: number) => `${(n / 1048576).toFixed(1)} MiB`;
const pct = (x: number) => `${Math.round(x * 100)}%`;

function groupBy(rows: Row[], key: (r: Row) => string | null): Map<string, Row[]> {
  const m = new Map<string, Row[]>();
  for (const r of rows) {
    const k = key(r);
    if (k === null) continue;
    const g = m.get(k);
    if (g) g.push(r);
    else m.set(k, [r]);
  }
  return m;
}
const last = <T>(a: T[]) => a[a.length - 1];
/**
 * The new look-ups of the batch by link and Taipei day, each with every look-up of that link on that
 * day so far (a day split across scans is judged whole).
 */
async function lookupDays(tx: Db, rows: Row[]): Promise<{ linkId: number; agency: string | null; day: string; today: Row[] }[]> {
  const groups = groupBy(rows.filter((r) => r.type === 'query.answered' && r.linkId !== null), (r) => `${r.linkId}|${day(r.at)}`);
  const out: { linkId: number; agency: string | null; day: string; today: Row[] }[] = [];
  for (const g of groups.values()) {
    const { linkId, agency, at } = last(g);
    const d = day(at);
    out.push({ linkId: linkId!, agency, day: d, today: await repo.window(tx, { types: ANSWERED, linkId: linkId!, fromAt: startOfTaipeiDay(d).toISOString(), toAt: at }) });
  }
  return out;
}
/** The one value every record shares, or null. */
const common = <K extends keyof Row>(rows: Row[], k: K): Row[K] | null => (rows.every((r) => r[k] === rows[0][k]) ? rows[0][k] : null);

/** Weekday, HH:MM and date of an instant in a time zone. */
export function localTime(at: string, timeZone: string): { weekday: number; hhmm: string; date: string } {
  const parts = Object.fromEntries(
    new Intl.DateTimeFormat('en-US', { timeZone, weekday: 'short', year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' })
      .formatToParts(new Date(at))
      .map((p) => [p.type, p.value]),
  );
  return { weekday: ['Sun', 'Mon', 'Tue', 'Wed', 'Thu', 'Fri', 'Sat'].indexOf(parts.weekday), hhmm: `${parts.hour}:${parts.minute}`, date: `${parts.year}-${parts.month}-${parts.day}` };
}

export function outsideBusinessHours(at: string, bh: AnomalySettings['businessHours']): boolean {
  const t = localTime(at, bh.timeZone);
  return !bh.weekdays.includes(t.weekday) || t.hhmm < bh.start || t.hhmm >= bh.end;
}

/**
 * The rules (R7.1). Each looks at the new records of its kind, grouped by what it is about, and
 * looks back in the log as far as its window needs, so a burst split across two scans is seen whole.
 */
const rules: Record<RuleName, (tx: Db, rows: Row[], s: AnomalySettings) => Hit[] | Promise<Hit[]>> = {
  // Connections the SFTP gate refused because no link lists the address (aggregated records carry a count).
  'refused-ip': async (tx, rows, s) => {
    const refusedUnlisted = (r: Row) => {
      const d = detailOf(r);
      if (d.reasons && typeof d.reasons === 'object') return Number(d.reasons['ip.not-allowed'] ?? 0);
      return typeof d.count === 'number' ? d.count : 1;
    };
    const groups = groupBy(rows.filter((r) => r.type === 'connection.refused' && r.ip), (r) => `${r.ip}|${day(r.at)}`);
    const hits: Hit[] = [];
    for (const g of groups.values()) {
      const { ip, at } = last(g);
      const d = day(at);
      const all = (await repo.window(tx, { types: ['connection.refused'], ip: ip!, fromAt: startOfTaipeiDay(d).toISOString(), toAt: at })).filter((r) => refusedUnlisted(r) > 0);
      const n = all.reduce((sum, r) => sum + refusedUnlisted(r), 0);
      if (n < s.refusedIp.perDay) continue;
      hits.push({ rule: 'refused-ip', key: `refused-ip:${ip}:${d}`, linkId: null, agency: null, ip, summary: `${n} connection(s) refused from unlisted address ${ip} on ${d}`, seqs: all.map((r) => r.seq), detail: { refused: n, day: d } });
    }
    return hits;
  },
  // Repeated failed logins from one address within the window.
  'failed-logins': async (tx, rows, s) => {
    const w = s.failedLogins.windowMinutes * 60_000;
    const groups = groupBy(rows.filter((r) => r.type === 'auth.failed' && r.ip), (r) => r.ip);
    const hits: Hit[] = [];
    for (const g of groups.values()) {
      // The newest window with enough failures; every record of the batch ends one window.
      const all = await repo.window(tx, { types: ['auth.failed'], ip: g[0].ip!, fromAt: minus(g[0].at, w), toAt: last(g).at });
      let best: Row[] = [];
      let lo = 0;
      let hi = 0;
      for (const end of g) {
        while (hi < all.length && all[hi].seq <= end.seq) hi++;
        while (lo < hi && all[lo].at <= minus(end.at, w)) lo++;
        if (hi - lo >= s.failedLogins.threshold) best = all.slice(lo, hi);
      }
      if (!best.length) continue;
      const ip = g[0].ip!;
      const d = day(last(best).at);
      hits.push({ rule: 'failed-logins', key: `failed-logins:${ip}:${d}`, linkId: common(best, 'linkId'), agency: common(best, 'agency'), ip, summary: `${best.length} failed logins from ${ip} within ${s.failedLogins.windowMinutes} min (${d})`, seqs: best.map((r) => r.seq), detail: { failures: best.length, windowMinutes: s.failedLogins.windowMinutes, accounts: [...new Set(best.map((r) => r.actor ?? detailOf(r).username ?? null))] } });
    }
    return hits;
  },
  // A day's download volume of a link far above its trailing daily average (needs some history).
  volume: async (tx, rows, s) => {
    const v = s.volume;
    const groups = groupBy(rows.filter((r) => r.type === 'file.downloaded' && r.linkId !== null), (r) => `${r.linkId}|${day(r.at)}`);
    const hits: Hit[] = [];
    for (const g of groups.values()) {
      const { linkId, at } = last(g);
      const d = day(at);
      const dayStart = startOfTaipeiDay(d).toISOString();
      const today = await repo.window(tx, { types: ['file.downloaded'], linkId: linkId!, fromAt: dayStart, toAt: at });
      const before = await repo.window(tx, { types: ['file.downloaded'], linkId: linkId!, fromAt: startOfTaipeiDay(addDays(d, -v.baselineDays)).toISOString(), toAt: minus(dayStart, 1) });
      if (!before.length) continue;
      const bytes = today.reduce((n, r) => n + bytesOf(r), 0);
      const baseline = before.reduce((n, r) => n + bytesOf(r), 0) / v.baselineDays;
      if (bytes < v.minBytes || bytes <= v.factor * baseline) continue;
      hits.push({ rule: 'volume', key: `volume:${linkId}:${d}`, linkId, agency: last(g).agency, ip: common(today, 'ip'), summary: `link ${linkId} downloaded ${mib(bytes)} on ${d}, ${baseline ? (bytes / baseline).toFixed(1) + '×' : 'far above'} its ${v.baselineDays}-day daily average of ${mib(baseline)}`, seqs: today.map((r) => r.seq), detail: { bytes, baselinePerDay: Math.round(baseline), baselineDays: v.baselineDays, factor: v.factor } });
    }
    return hits;
  },
  // Downloads outside business hours (weekends included), in the configured time zone.
  'off-hours': (_tx, rows, s) => {
    const bh = s.businessHours;
    const groups = groupBy(rows.filter((r) => r.type === 'file.downloaded' && outsideBusinessHours(r.at, bh)), (r) => `${r.linkId}|${localTime(r.at, bh.timeZone).date}`);
    return [...groups.values()].map((g) => {
      const t = localTime(g[0].at, bh.timeZone);
      return { rule: 'off-hours', key: `off-hours:${g[0].linkId}:${t.date}`, linkId: g[0].linkId, agency: g[0].agency, ip: common(g, 'ip'), summary: `link ${g[0].linkId ?? '-'}: download(s) outside business hours on ${t.date} (first at ${t.hhmm} ${bh.timeZone}; hours ${bh.start}–${bh.end})`, seqs: g.map((r) => r.seq), detail: { date: t.date, firstLocalTime: t.hhmm, timeZone: bh.timeZone } };
    });
  },
  // The same file downloaded many times by one link within the window.
  'repeated-download': async (tx, rows, s) => {
    const w = s.repeatedDownload.windowHours * 3600_000;
    const groups = groupBy(rows.filter((r) => r.type === 'file.downloaded' && r.linkId !== null && r.object), (r) => `${r.linkId}|${r.object}`);
    const hits: Hit[] = [];
    for (const g of groups.values()) {
      const { linkId, object, at } = last(g);
      const all = await repo.window(tx, { types: ['file.downloaded'], linkId: linkId!, object: object!, fromAt: minus(at, w), toAt: at });
      // A session's repeated downloads of one file within an interval are one record with their count (`opens`).
      const downloads = all.reduce((n, r) => n + opensOf(r), 0);
      if (downloads < s.repeatedDownload.threshold) continue;
      hits.push({ rule: 'repeated-download', key: `repeated-download:${linkId}:${object}`, linkId, agency: last(g).agency, ip: common(all, 'ip'), summary: `link ${linkId}: ${object} downloaded ${downloads} times within ${s.repeatedDownload.windowHours} h`, seqs: all.map((r) => r.seq), detail: { file: object, downloads, windowHours: s.repeatedDownload.windowHours } });
    }
    return hits;
  },
  // Attempts on a link that may not be used: refused for that reason, or a use while the log shows it suspended or ended.
  'inactive-link': async (tx, rows) => {
    const flagged: { r: Row; status: string }[] = [];
    for (const r of rows) {
      if (r.linkId === null) continue;
      const reason = detailOf(r).reason;
      if (r.type === 'auth.failed' && typeof reason === 'string' && LINK_UNUSABLE.has(reason)) {
        flagged.push({ r, status: reason });
        continue;
      }
      if (!isUse(r.type)) continue;
      const s = await repo.lastOfTypes(tx, r.linkId, r.seq, Object.keys(STATUS_EVENTS));
      const status = s ? STATUS_EVENTS[s.type] : undefined;
      if (status && status !== 'active') flagged.push({ r, status });
    }
    const groups = new Map<string, { r: Row; status: string }[]>();
    for (const f of flagged) {
      const k = `${f.r.linkId}|${day(f.r.at)}`;
      groups.set(k, [...(groups.get(k) ?? []), f]);
    }
    return [...groups.values()].map((g) => {
      const r = g[0].r;
      const d = day(r.at);
      return { rule: 'inactive-link', key: `inactive-link:${r.linkId}:${d}`, linkId: r.linkId, agency: r.agency, ip: common(g.map((x) => x.r), 'ip'), summary: `link ${r.linkId} may not be used (${g[0].status}): ${g.length} attempt(s) on ${d}`, seqs: g.map((x) => x.r.seq), detail: { status: g[0].status, types: [...new Set(g.map((x) => x.r.type))] } };
    });
  },
  // R3.5: identifiers a link looked up in a day far above its trailing daily average (needs some history).
  'query-volume': async (tx, rows, s) => {
    const v = s.queryVolume;
    const hits: Hit[] = [];
    for (const { linkId, agency, day: d, today } of await lookupDays(tx, rows)) {
      const dayStart = startOfTaipeiDay(d).toISOString();
      const before = await repo.window(tx, { types: ANSWERED, linkId, fromAt: startOfTaipeiDay(addDays(d, -v.baselineDays)).toISOString(), toAt: minus(dayStart, 1) });
      if (!before.length) continue;
      const ids = today.reduce((n, r) => n + lookupOf(r).ids, 0);
      const baseline = before.reduce((n, r) => n + lookupOf(r).ids, 0) / v.baselineDays;
      if (ids < v.minIds || ids <= v.factor * baseline) continue;
      hits.push({ rule: 'query-volume', key: `query-volume:${linkId}:${d}`, linkId, agency, ip: common(today, 'ip'), summary: `link ${linkId} looked up ${ids} identifier(s) on ${d}, ${baseline ? (ids / baseline).toFixed(1) + '×' : 'far above'} its ${v.baselineDays}-day daily average of ${baseline.toFixed(1)}`, seqs: today.map((r) => r.seq), detail: { ids, baselinePerDay: Math.round(baseline * 10) / 10, baselineDays: v.baselineDays, factor: v.factor, requests: today.length } });
    }
    return hits;
  },
  // R3.5: many different persons looked up by one link in a day, whatever the rate: what harvesting looks like.
  'query-distinct': async (tx, rows, s) => {
    const perDay = s.queryDistinct.perDay;
    return (await lookupDays(tx, rows)).flatMap(({ linkId, agency, day: d, today }) => {
      const distinct = new Set(today.flatMap((r) => lookupOf(r).idHashes)).size;
      if (distinct < perDay) return [];
      return [{ rule: 'query-distinct', key: `query-distinct:${linkId}:${d}`, linkId, agency, ip: common(today, 'ip'), summary: `link ${linkId} looked up ${distinct} distinct identifiers on ${d} (threshold ${perDay} a day)`, seqs: today.map((r) => r.seq), detail: { distinct, perDay, requests: today.length } }];
    });
  },
  // R3.5: look-ups outside business hours (weekends included), in the configured time zone.
  'query-off-hours': (_tx, rows, s) => {
    const bh = s.businessHours;
    const groups = groupBy(rows.filter((r) => r.type === 'query.answered' && outsideBusinessHours(r.at, bh)), (r) => `${r.linkId}|${localTime(r.at, bh.timeZone).date}`);
    return [...groups.values()].map((g) => {
      const t = localTime(g[0].at, bh.timeZone);
      const ids = g.reduce((n, r) => n + lookupOf(r).ids, 0);
      return { rule: 'query-off-hours', key: `query-off-hours:${g[0].linkId}:${t.date}`, linkId: g[0].linkId, agency: g[0].agency, ip: common(g, 'ip'), summary: `link ${g[0].linkId ?? '-'}: look-up(s) outside business hours on ${t.date} (first at ${t.hhmm} ${bh.timeZone}; hours ${bh.start}–${bh.end})`, seqs: g.map((r) => r.seq), detail: { date: t.date, firstLocalTime: t.hhmm, timeZone: bh.timeZone, ids } };
    });
  },
  // R3.5: most identifiers asked in a day match nobody: guessing identifiers, not working cases.
  'query-not-found': async (tx, rows, s) => {
    const v = s.queryNotFound;
    return (await lookupDays(tx, rows)).flatMap(({ linkId, agency, day: d, today }) => {
      // Only look-ups that say how many were found count; an old record without it proves nothing either way.
      const known = today.filter((r) => lookupOf(r).found !== null);
      const ids = known.reduce((n, r) => n + lookupOf(r).ids, 0);
      const found = known.reduce((n, r) => n + Math.min(lookupOf(r).found!, lookupOf(r).ids), 0);
      if (ids < v.minIds) return [];
      const share = (ids - found) / ids;
      if (share < v.share) return [];
      return [{ rule: 'query-not-found', key: `query-not-found:${linkId}:${d}`, linkId, agency, ip: common(known, 'ip'), summary: `link ${linkId}: ${ids - found} of ${ids} identifiers looked up on ${d} matched no record (${pct(share)}; threshold ${pct(v.share)}), as when identifiers are guessed`, seqs: known.map((r) => r.seq), detail: { ids, found, notFound: ids - found, share: Math.round(share * 1000) / 1000, threshold: v.share, minIds: v.minIds } }];
    });
  },
  // R3.5: one batch request naming very many persons (each is its own finding: the request is the evidence).
  'batch-large': (_tx, rows, s) =>
    rows
      .filter((r) => r.type === 'batch.received' && (count(detailOf(r).ids) ?? 0) >= s.batchLarge.minIds)
      .map((r) => {
        const ids = count(detailOf(r).ids)!;
        return { rule: 'batch-large' as const, key: `batch-large:${r.linkId}:${r.seq}`, linkId: r.linkId, agency: r.agency, ip: r.ip, summary: `link ${r.linkId ?? '-'}: batch request ${r.object ?? ''} named ${ids} identifiers (threshold ${s.batchLarge.minIds})`, seqs: [r.seq], detail: { ids, minIds: s.batchLarge.minIds, reference: detailOf(r).reference ?? null } };
      }),
  // R3.5: uploads refused again and again (bad signatures, wrong keys, malformed lists): probing, or a broken client.
  'batch-refused': async (tx, rows, s) => {
    const v = s.batchRefused;
    const groups = groupBy(rows.filter((r) => r.type === 'batch.refused' && r.linkId !== null), (r) => String(r.linkId));
    const hits: Hit[] = [];
    for (const g of groups.values()) {
      const end = last(g);
      const all = await repo.window(tx, { types: ['batch.refused'], linkId: end.linkId!, fromAt: minus(end.at, v.windowHours * 3600e3), toAt: end.at });
      if (all.length < v.threshold) continue;
      const d = day(end.at);
      const codes = [...new Set(all.map((r) => detailOf(r).code).filter((c): c is string => typeof c === 'string'))];
      hits.push({ rule: 'batch-refused' as const, key: `batch-refused:${end.linkId}:${d}`, linkId: end.linkId, agency: end.agency, ip: common(all, 'ip'), summary: `link ${end.linkId}: ${all.length} uploads to /inbox refused within ${v.windowHours} h (${codes.join(', ')})`, seqs: all.map((r) => r.seq), detail: { refused: all.length, windowHours: v.windowHours, threshold: v.threshold, codes } });
    }
    return hits;
  },
};

const ruleEnabled = (rule: RuleName, s: AnomalySettings) =>
  ({
    'refused-ip': s.refusedIp,
    'failed-logins': s.failedLogins,
    volume: s.volume,
    'off-hours': s.offHours,
    'repeated-download': s.repeatedDownload,
    'inactive-link': s.inactiveLink,
    'query-volume': s.queryVolume,
    'query-distinct': s.queryDistinct,
    'query-off-hours': s.queryOffHours,
    'query-not-found': s.queryNotFound,
    'batch-large': s.batchLarge,
    'batch-refused': s.batchRefused,
  })[rule].enabled;

/** Run the enabled rules over records (pure apart from the look-back reads). */
export async function detect(tx: Db, rows: Row[], s: AnomalySettings): Promise<Hit[]> {
  const hits: Hit[] = [];
  for (const rule of RULES.filter((rule) => ruleEnabled(rule, s))) hits.push(...(await rules[rule](tx, rows, s)));
  return hits;
}

/** Store a hit, or fold its new records into the anomaly already stored under its key. */
async function record(tx: Db, h: Hit, rows: Map<number, Row>, now: string): Promise<'new' | 'updated' | 'seen'> {
  const seqs = [...new Set(h.seqs)].sort((a, b) => a - b);
  const at = async (seq: number) => rows.get(seq)?.at ?? (await repo.bySeq(tx, seq))?.at ?? now;
  const existing = await store.byKey(tx, h.key);
  if (!existing) {
    await store.insert(tx, {
      rule: h.rule, key: h.key, linkId: h.linkId, agency: h.agency, ip: h.ip, summary: h.summary, evidence: seqs.slice(0, EVIDENCE_CAP), count: seqs.length,
      detail: { ...h.detail, lastSeq: last(seqs) }, firstAt: await at(seqs[0]), lastAt: await at(last(seqs)), detectedAt: now, updatedAt: now, status: 'open', findingId: null,
    });
    return 'new';
  }
  const seen = Number(existing.detail.lastSeq ?? 0);
  const fresh = seqs.filter((s) => s > seen);
  if (!fresh.length) return 'seen';
  await store.update(tx, existing.id, {
    summary: h.summary,
    evidence: [...new Set([...existing.evidence, ...fresh])].sort((a, b) => a - b).slice(0, EVIDENCE_CAP),
    count: existing.count + fresh.length,
    detail: { ...h.detail, lastSeq: last(fresh) },
    lastAt: await at(last(fresh)),
    updatedAt: now,
  });
  return 'updated';
}

export interface ScanResult {
  scanned: number;
  through: number;
  detected: number;
  updated: number;
}

/** Run the rules over the next batch of records since the last scan; null when there is none. */
export async function scanBatch(cdb: ControlDb, s: AnomalySettings, now: Date): Promise<ScanResult | null> {
  const from = await store.scannedThrough(cdb.db);
  const batch = await repo.after(cdb.db, from, BATCH);
  if (!batch.length) return null;
  const result: ScanResult = { scanned: batch.length, through: last(batch).seq, detected: 0, updated: 0 };
  // The batch's anomalies and the new position are stored together: a crash never skips or repeats records.
  await cdb.write(async (tx) => {
    if ((await store.scannedThrough(tx)) !== from) return void (result.scanned = 0); // another scanner got there first
    const bySeq = new Map(batch.map((r) => [r.seq, r]));
    for (const h of await detect(tx, batch, s)) {
      const r = await record(tx, h, bySeq, now.toISOString());
      if (r === 'new') result.detected++;
      else if (r === 'updated') result.updated++;
    }
    await store.setScannedThrough(tx, result.through, now.toISOString());
  });
  return result;
}

/** R7.1: scan every record written since the last scan, batch by batch (`yieldBetween`: let the event loop run). */
export async function scanAnomalies(cdb: ControlDb, s: AnomalySettings, now: Date, yieldBetween = false): Promise<ScanResult> {
  const total: ScanResult = { scanned: 0, through: await store.scannedThrough(cdb.db), detected: 0, updated: 0 };
  for (let r = await scanBatch(cdb, s, now); r; r = await scanBatch(cdb, s, now)) {
    total.scanned += r.scanned;
    total.through = r.through;
    total.detected += r.detected;
    total.updated += r.updated;
    if (yieldBetween) await new Promise((resolve) => setImmediate(resolve));
  }
  return total;
}

export const listAnomalies = (cdb: ControlDb, f: store.AnomalyFilter = {}): Promise<AnomalyRow[]> => store.list(cdb.db, f);
