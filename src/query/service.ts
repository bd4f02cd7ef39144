import { z } from 'zod';
import type { Config } from '../config';
import { keyedIdHash } from '../crypto';
import type { ControlDb } from '../db';
import { batch, queries } from '../db/repositories';
import { type Clock, clientRefusal, type DatasetCatalog, mayUseChannel, normaliseIp, type Scope, subjectsOf, taipeiDate } from '../domain';
import { channelSecret, compileScope, type CompiledScope, CONFIDENTIALITY_NOTICE, openExtractSource, projection } from '../extract';
import type { Source } from '../extract/source';
import type { DailyCap } from './cap';
import { QueryRefusals } from './refusals';
import type { Logger } from '../logger';
import type { LinkState, Registry } from '../registry';
import type { LogEntry, RecordSink } from '../usagelog';

export interface QueryRequest {
  /** SHA-256 of the TLS client certificate, or null when the client sent none. */
  certFingerprint: string | null;
  /**
   * The certificate's validity (ms since the epoch), which the TLS server always passes. A caller in
   * this process that leaves it out is checked against the dates last seen with the fingerprint.
   */
  certValidity?: CertValidity;
  ip: string;
  dataset: string;
  body: unknown;
}
export interface CertValidity {
  notBefore: number;
  notAfter: number;
}
export interface QueryAnswer {
  status: number;
  body: unknown;
}

const bodySchema = z.object({
  ids: z.array(z.string().min(1).max(64)).min(1),
  reference: z.string().trim().min(1).max(200),
});

const err = (status: number, code: string, message: string): QueryAnswer => ({ status, body: { error: { code, message } } });

export interface QueryDeps {
  cdb: ControlDb;
  /** Where the records of look-ups go: committed before each answer. */
  appender: Pick<RecordSink, 'append'>;
  registry: Registry;
  catalogs: ReadonlyMap<string, DatasetCatalog>;
  clock: Clock;
  config: Config;
  idSecret: Buffer;
  /** R3.5: identifiers a link may look up a day, shared by every process and host. */
  cap: DailyCap;
  /** Hears of aggregated refusal records that could not be written. */
  log?: Pick<Logger, 'error'>;
  /** The source records are looked up in (default: the configured one, source.url or the embedded file). */
  openSource?: () => Source;
}

/** The clock difference between an agency's machine and ours tolerated on a certificate's start (as at registration). */
const NOT_BEFORE_SKEW_MS = 5 * 60_000;
/** Certificates whose dates are remembered; a DER's dates never change, so this only bounds memory. */
const MAX_VALIDITIES = 10_000;

/**
 * Online query (R2.1): a look-up of individual persons by a link's registered client, answered with
 * exactly the approved fields (transforms applied), under the same checks as every other channel
 * (mayUse, the allow-list), and recorded in the usage log with the ids as keyed hashes (R6.1).
 */
export class QueryService {
  private source?: Source;
  private readonly lookups = new Map<string, { fns: ReturnType<typeof projection>; scope: CompiledScope }>();
  private readonly buckets = new Map<number, { tokens: number; at: number }>();
  private readonly refusals: QueryRefusals;
  private readonly validity = new Map<string, CertValidity>();

  /**
   * What each client certificate may query for, as read at registry version `authzVersion`. Any change
   * to a link or agency row, by any process, moves the version and empties this, so a suspension or a
   * certificate change applies to the very next request.
   */
  private readonly authz = new Map<string, LinkState[]>();
  private authzVersion = -1;
  private versionThisTurn: Promise<number> | undefined;

  constructor(private readonly d: QueryDeps) {
    const q = d.config.query;
    this.refusals = new QueryRefusals(d.appender, d.clock, { intervalSec: q.refusedLogIntervalSec, maxIps: q.refusedLogMaxIps }, (err) =>
      d.log?.error({ err: err.message }, 'query: aggregated refusals not logged'),
    );
  }

  /** Each answer waits for its record's commit (usagelog/appender.ts: group commit, off this thread). */
  private log(entry: LogEntry, now: Date): Promise<void> {
    return this.d.appender.append(entry, now);
  }

  /** The keyed hash under which an id goes into the usage log. */
  idHash(id: string): string {
    return keyedIdHash(this.d.idSecret, id);
  }

  private records(): Source {
    this.source ??= (this.d.openSource ?? (() => openExtractSource(this.d.config)))();
    return this.source;
  }

  /** Writes the refusals counted so far (through the appender, which the caller closes after this). */
  async close(): Promise<void> {
    const source = this.source;
    this.source = undefined;
    await source?.close();
    await this.refusals.stop();
  }

  /** Writes the refusals counted so far now, rather than at the end of their interval. */
  flushRefusals(): Promise<void> {
    return this.refusals.flush();
  }

  /** A connection refused at accept (the server's connection limits): counted like any unknown client. */
  refusedConnection(ip: string, code: string): void {
    this.refusals.noteUnknown(code, normaliseIp(ip), null, null);
  }

  /**
   * The registry version, read once per turn of the event loop: every request handled in one turn
   * was received before the turn began reading, and sees the registry as it was then. A change
   * committed meanwhile applies from the next turn on, within milliseconds. (Each read after another
   * connection's commit re-reads pages, about 10 µs: once per request was a tenth of a look-up.)
   */
  private registryVersion(): Promise<number> {
    if (this.versionThisTurn === undefined) {
      this.versionThisTurn = queries.registryVersion(this.d.cdb.db);
      setImmediate(() => (this.versionThisTurn = undefined));
    }
    return this.versionThisTurn;
  }

  private async statesFor(fingerprint: string): Promise<LinkState[]> {
    const version = await this.registryVersion();
    if (version !== this.authzVersion) {
      this.authz.clear();
      this.authzVersion = version;
    }
    let states = this.authz.get(fingerprint);
    if (!states) {
      states = [];
      for (const id of await queries.linksForClientCert(this.d.cdb.db, fingerprint)) states.push(await this.d.registry.state(id));
      // Kept only if no later version was seen meanwhile: what was read may be older than that.
      if (this.authzVersion === version) {
        if (this.authz.size >= 1000) this.authz.clear();
        this.authz.set(fingerprint, states);
      }
    }
    return states;
  }

  /**
   * What a look-up of `n` ids on link `s` uses on `day`: the projection (pseudonyms of this channel,
   * R3.5) and the scope compiled for the day (R3.4: a record outside it is answered exactly like an
   * unknown id). Kept per link, revision and day: revisions never change. A subject list (R3.4) is not
   * in it: the ids asked for are checked against the list in force when each request comes.
   */
  private lookup(s: LinkState, day: string): { fns: ReturnType<typeof projection>; scope: CompiledScope } {
    const cacheKey = `${s.link.id}|${s.link.currentRevision}|${day}`;
    const hit = this.lookups.get(cacheKey);
    if (hit) return hit;
    const catalog = this.d.catalogs.get(s.content.dataset)!;
    const entry = { fns: projection(s.content.fields, channelSecret(s.link.hmacSecret, 'online-query')), scope: compileScope(withoutSubjects(s.content.scope), catalog, day) };
    if (this.lookups.size > 2000) this.lookups.clear();
    this.lookups.set(cacheKey, entry);
    return entry;
  }

  private allow(linkId: number, now: number): boolean {
    const perMs = this.d.config.query.ratePerMinute / 60000;
    const b = this.buckets.get(linkId) ?? { tokens: this.d.config.query.ratePerMinute, at: now };
    b.tokens = Math.min(this.d.config.query.ratePerMinute, b.tokens + (now - b.at) * perMs);
    b.at = now;
    this.buckets.set(linkId, b);
    if (b.tokens < 1) return false;
    b.tokens -= 1;
    return true;
  }

  /**
   * A refusal after the link's rate limit was taken: bounded by that limit like the answers, and
   * recorded like them, one record each (with the reference), committed before the answer.
   */
  private async refuse(req: QueryRequest, s: LinkState, status: number, code: string, message: string, extra: Record<string, unknown> = {}): Promise<QueryAnswer> {
    await this.log(
      { type: 'query.refused', agency: s.agency.code, linkId: s.link.id, revision: s.link.currentRevision, actor: actorOf(req), ip: normaliseIp(req.ip), channel: 'online-query', object: req.dataset.slice(0, 64), detail: { code, ...extra } },
      this.d.clock.now(),
    );
    return err(status, code, message);
  }

  /**
   * A refusal nothing bounds (before the rate limit, the rate limit itself, an unknown client): counted
   * in memory and recorded once per interval with the count, so the answer waits for no commit.
   */
  private refuseCounted(req: QueryRequest, s: LinkState | null, status: number, code: string, message: string): QueryAnswer {
    const ip = normaliseIp(req.ip);
    const object = req.dataset.slice(0, 64);
    if (s) this.refusals.noteLink({ agency: s.agency.code, linkId: s.link.id, revision: s.link.currentRevision }, code, ip, actorOf(req), object);
    else this.refusals.noteUnknown(code, ip, actorOf(req), object);
    return err(status, code, message);
  }

  /** The certificate's dates: as presented on this connection, else as last presented with the same fingerprint. */
  private validityOf(req: QueryRequest): CertValidity | undefined {
    const fp = req.certFingerprint!;
    if (!req.certValidity) return this.validity.get(fp);
    const known = this.validity.get(fp);
    if (!known || known.notBefore !== req.certValidity.notBefore || known.notAfter !== req.certValidity.notAfter) {
      if (this.validity.size >= MAX_VALIDITIES) this.validity.clear();
      this.validity.set(fp, req.certValidity);
    }
    return req.certValidity;
  }

  async handle(req: QueryRequest): Promise<QueryAnswer> {
    const now = this.d.clock.now();
    const ip = normaliseIp(req.ip);
    if (!req.certFingerprint) return this.refuseCounted(req, null, 401, 'client-certificate.missing', 'a registered TLS client certificate is required');
    // One certificate may serve several links of the agency; the dataset in the path picks the link.
    const states = await this.statesFor(req.certFingerprint);
    if (states.length === 0) return this.refuseCounted(req, null, 403, 'client-certificate.unknown', 'this client certificate is not registered for online query');
    // Registration keeps a certificate to one agency; one registered before that rule, on links of
    // several agencies, cannot say whose system is asking, so it gets nothing until NIA fixes it.
    if (states.some((x) => x.agency.id !== states[0].agency.id)) return this.refuseCounted(req, null, 403, 'client-certificate.ambiguous', 'this client certificate is registered for more than one agency; NIA must register it for one only');
    const s = states.find((x) => x.content.dataset === req.dataset && x.link.status === 'active') ?? states.find((x) => x.content.dataset === req.dataset) ?? states[0];
    const validity = this.validityOf(req);
    if (validity && now.getTime() > validity.notAfter) return this.refuseCounted(req, s, 403, 'client-certificate.expired', `the client certificate expired on ${new Date(validity.notAfter).toISOString().slice(0, 10)}; register a new one (link change --kind client-cert)`);
    if (validity && now.getTime() + NOT_BEFORE_SKEW_MS < validity.notBefore) return this.refuseCounted(req, s, 403, 'client-certificate.not-yet-valid', 'the client certificate is not valid yet');
    const may = mayUseChannel(s, 'online-query', { today: taipeiDate(now), ip });
    if (!may.ok) {
      const told = clientRefusal(may.refusal.code);
      return this.refuseCounted(req, s, told.http, told.code, `link ${s.link.id}: ${may.refusal.message}`);
    }
    if (s.content.dataset !== req.dataset) return this.refuseCounted(req, s, 403, 'dataset.not-approved', `link ${s.link.id} is not approved for dataset ${req.dataset.slice(0, 64)}`);
    // Before the body is looked at: whatever a request holds, the link's rate bounds what it costs,
    // records included.
    if (!this.allow(s.link.id, now.getTime())) return this.refuseCounted(req, s, 429, 'rate.limited', `more than ${this.d.config.query.ratePerMinute} requests a minute`);
    const parsed = bodySchema.safeParse(req.body);
    if (!parsed.success) {
      const missingRef = parsed.error.issues.some((i) => i.path[0] === 'reference');
      return this.refuse(req, s, 400, missingRef ? 'reference.missing' : 'request.invalid', missingRef ? 'a reference (the case or document number the look-up is for) is required' : 'the body must be {"ids": ["…"], "reference": "…"}');
    }
    const { reference } = parsed.data;
    const lookupIds = [...new Set(parsed.data.ids.map((x) => x.trim()))];
    if (lookupIds.length > this.d.config.query.maxIds) return this.refuse(req, s, 413, 'ids.too-many', `at most ${this.d.config.query.maxIds} ids per request`, { ids: lookupIds.length, reference });

    // R3.4: a link limited to its subject list answers only for the persons on it. The list is checked
    // here, in the control database, and the source is asked for those identifiers only; the others
    // are answered exactly like unknown ones.
    const catalog = this.d.catalogs.get(s.content.dataset)!;
    let askIds = lookupIds;
    if (subjectsOf(s.content.scope)) {
      const list = await batch.subjectListOf(this.d.cdb.db, s.link.id);
      if (!list) return this.refuse(req, s, 409, 'subjects.missing', `link ${s.link.id} answers only for the persons on its subject list, and none has been uploaded yet (subjects-NAME.csv.pgp in /inbox)`, { reference });
      if (list.keyField !== catalog.lookup) return this.refuse(req, s, 409, 'subjects.key', `link ${s.link.id}'s subject list names persons by ${list.keyField}; the online query looks them up by ${catalog.lookup}`, { reference });
      askIds = await batch.subjectsAmong(this.d.cdb.db, s.link.id, lookupIds);
    }

    const day = taipeiDate(now);
    let taken: { ok: boolean; used: number };
    try {
      taken = await this.d.cap.take(s.link.id, day, lookupIds.length, s.content.maxIdsPerDay);
    } catch {
      // The cap is a rule of the regulation: without its count, nothing is answered.
      return this.refuse(req, s, 503, 'cap.unavailable', 'the daily identifier count cannot be checked now; try again later', { reference });
    }
    if (!taken.ok) {
      return this.refuse(req, s, 429, 'cap.reached', `link ${s.link.id} may look up ${s.content.maxIdsPerDay} identifiers a day; ${Math.max(0, s.content.maxIdsPerDay - taken.used)} remain today`, { ids: lookupIds.length, reference });
    }

    const fields = s.content.fields;
    const { fns, scope } = this.lookup(s, day);
    // Only the approved columns are read (R3.2); the lookup column comes last, only to count the ids
    // found, and is never returned unless approved.
    const rows = askIds.length === 0 ? [] : await this.records().lookup({ dataset: s.content.dataset, fields: fields.map((f) => f.name), keyField: catalog.lookup, ids: askIds, scope, limit: this.d.config.query.maxRecords });
    const records = rows.map((r) => Object.fromEntries(fields.map((f, i) => [f.name, fns[i](r[i])])));
    const found = new Set(rows.map((r) => r[fields.length])).size;
    await this.log(
        {
          type: 'query.answered',
          agency: s.agency.code,
          linkId: s.link.id,
          revision: s.link.currentRevision,
          actor: actorOf(req),
          ip,
          channel: 'online-query',
          object: s.content.dataset,
          detail: { ids: lookupIds.length, found, returned: records.length, reference, idHashes: lookupIds.map((x) => this.idHash(x)), cert: req.certFingerprint, idsToday: taken.used },
        },
        now,
    );
    // Form item 7 travels with the data it covers, as in every manifest (R-F7).
    return { status: 200, body: { records, confidentiality: CONFIDENTIALITY_NOTICE } };
  }
}

function actorOf(req: QueryRequest): string | null {
  return req.certFingerprint ? `cert:${req.certFingerprint.slice(0, 16)}` : null;
}

/** The scope without its subject-list condition (checked per request against the list in force). */
function withoutSubjects(scope: Scope): Scope {
  return scope.all ? scope : { all: false, conditions: scope.conditions.filter((c) => c.op !== 'subjects') };
}
