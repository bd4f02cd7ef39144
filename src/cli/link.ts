import path from 'node:path';
import type { Command } from 'commander';
import { CHANGE_KINDS, DEFAULT_MAX_IDS_PER_DAY, type ChangeKind, rocDateText, LINK_STATUSES, type LinkStatus, METHODS, type Method, parseFieldList, type PushEndpoint, subjectsOf } from '../domain';
import { batch } from '../db/repositories';
import { UserError } from '../errors';
import type { LinkView } from '../registry';
import { actor, basename, type CliContext, collect, parseDate, parseId, printJson, readInputFile, splitList, writeOutputFile } from './context';

function methods(text: string): Method[] {
  const list = splitList(text);
  for (const m of list) if (!(METHODS as readonly string[]).includes(m)) throw new UserError(`unknown method '${m}' (one of ${METHODS.join(', ')})`);
  return list as Method[];
}

/** --push-* options as an endpoint, or undefined when none is given. */
function pushEndpoint(o: Record<string, string | undefined>): PushEndpoint | undefined {
  const given = ['pushHost', 'pushUser', 'pushDir', 'pushFingerprint', 'pushPort'].filter((k) => o[k] !== undefined);
  if (given.length === 0) return undefined;
  for (const k of ['pushHost', 'pushUser', 'pushDir', 'pushFingerprint']) {
    if (o[k] === undefined) throw new UserError(`--${k.replace(/[A-Z]/g, (c) => '-' + c.toLowerCase())} is required with the other --push-* options`);
  }
  const port = o.pushPort === undefined ? 22 : Number(o.pushPort);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UserError(`--push-port '${o.pushPort}' is not a port number`);
  return { host: o.pushHost!, port, user: o.pushUser!, dir: o.pushDir!, fingerprint: o.pushFingerprint! };
}

function positiveInt(text: string, flag: string): number {
  if (!/^\d{1,8}$/.test(text.trim()) || Number(text) < 1) throw new UserError(`${flag} '${text}' is not a whole number of at least 1`);
  return Number(text);
}

function readJsonFile(file: string, what: string): unknown {
  try {
    return JSON.parse(readInputFile(file, what).toString('utf8'));
  } catch (err) {
    if (err instanceof UserError) throw err;
    throw new UserError(`${file} is not JSON (${what}; see schemas/scope.schema.json)`, 'scope.invalid');
  }
}

/** --client-cert files as PEM texts. */
function clientCerts(files: string[] | undefined): string[] {
  return (files ?? []).map((f) => readInputFile(f, 'client certificate').toString('utf8'));
}

function addPushOptions(cmd: Command): Command {
  return cmd
    .option('--push-host <host>', 'sftp-push: the agency SFTP server')
    .option('--push-port <port>', 'sftp-push: its port (22)')
    .option('--push-user <user>', 'sftp-push: the account NIA logs in as')
    .option('--push-dir <dir>', 'sftp-push: remote directory')
    .option('--push-fingerprint <fpr>', 'sftp-push: pinned host key, SHA256:… as ssh-keygen -lf prints it')
    .option('--email <address>', 'email: a registered recipient (repeatable, or comma-separated)', collect)
    .option('--client-cert <file>', "online-query: the agency system's TLS client certificate, PEM (repeatable)", collect);
}

export function printLink(l: LinkView): void {
  const rows: [string, string][] = [
    ['link', `${l.id} (revision ${l.revision})`],
    ['status', l.status + (l.statusReason ? ` — ${l.statusReason}` : '')],
    ['agency', `${l.agency} ${l.agencyName}`],
    ['dataset', l.dataset],
    ['fields', l.fields.join(', ')],
    ['scope', `${l.scopeText}${l.scopeReview ? '  (needs a scope review: recorded before scopes existed)' : ''}`],
    ['legal basis', l.legalBasis],
    ['purpose', l.purpose],
    ['department', l.department],
    ['officer / supervisor', `${l.officer} / ${l.supervisor}`],
    ['use period', `${l.from} – ${l.to}`],
    ['disposal', l.disposal],
    ['methods', l.channels.join(', ')],
    ['allowed IPs', l.allowIps.join(', ')],
    ['sftp account', l.account ?? '—'],
    ['pgp key', l.pgpFingerprint],
    ['schedule', l.schedule ?? '—'],
    ...(l.channels.includes('online-query') ? ([['ids a day', String(l.maxIdsPerDay)]] as [string, string][]) : []),
    ['management rules', l.rules ? `version ${l.rules.version} (document ${l.rules.document}): ${!l.rules.reviewed ? 'not reviewed' : l.rules.missing.length ? `missing topics ${l.rules.missing.join(', ')}` : 'all 8 topics reviewed'}` : '—'],
  ];
  for (const v of l.vendors) rows.push([v.parentId ? `sub-contractor ${v.id}` : `vendor ${v.id}`, `${v.name}${v.parentId ? ` (for vendor ${v.parentId})` : ''}, ${v.contact}; machines ${v.machines.join(', ')}`]);
  if (l.push) rows.push(['push', `${l.push.user}@${l.push.host}:${l.push.port}${l.push.dir} (${l.push.fingerprint})`]);
  if (l.email.length) rows.push(['email', l.email.join(', ')]);
  if (l.clientCerts.length) rows.push(['client certs', l.clientCerts.join(', ')]);
  if (l.approvedAt) rows.push(['approved', `${l.approvedAt} by ${l.approvedBy}`]);
  if (l.letterNo) rows.push(["NIA's reply", `letter ${l.letterNo} of ${l.letterDate} (${rocDateText(l.letterDate!)})`]);
  if (l.stampedForm) rows.push(['stamped form', `document ${l.stampedForm.document} ${l.stampedForm.filename} (sha256 ${l.stampedForm.sha256})`]);
  if (l.sponsor) rows.push(['sponsor', `${l.sponsor.code} ${l.sponsor.name}`]);
  if (l.endsOn) rows.push(['ends on', l.endsOn]);
  if (l.endReason) rows.push(['ended', l.endReason]);
  const w = Math.max(...rows.map(([k]) => k.length));
  for (const [k, v] of rows) console.log(`${k.padEnd(w)}  ${v}`);
}

export function register(program: Command, ctx: CliContext): void {
  const link = program.command('link').description('links: applications, approval, changes');

  addPushOptions(
    link
      .command('apply')
      .description("record an agency's application (form 申請暨異動書); the link is pending until approved")
      .requiredOption('--agency <code>', 'applying agency')
      .requiredOption('--dataset <name>', 'dataset (entry_exit, residence)')
      .requiredOption('--fields <list>', 'requested fields, comma-separated; field:transform for mask, hmac, year, year-month')
      .requiredOption('--legal-basis <text>', 'legal basis (form item 1)')
      .requiredOption('--purpose <text>', 'purpose (form item 1)')
      .requiredOption('--department <text>', 'using department (form item 2)')
      .requiredOption('--officer <name>', 'case officer')
      .requiredOption('--supervisor <name>', 'unit supervisor')
      .requiredOption('--from <date>', 'use period start, YYYY-MM-DD')
      .requiredOption('--to <date>', 'use period end, YYYY-MM-DD')
      .requiredOption('--disposal <text>', 'handling when the purpose ends (form item 5)')
      .requiredOption('--method <list>', `provision methods: ${METHODS.join(', ')}`)
      .requiredOption('--allow-ip <cidr>', 'designated IP addresses or CIDRs (repeatable, or comma-separated)', collect)
      .requiredOption('--pgp-key <file>', "the agency's OpenPGP public key")
      .option('--account <user>', 'sftp-pull: the designated SFTP account')
      .option('--ssh-key <file>', 'sftp-pull: an SSH public key of the account (repeatable)', collect)
      .option('--schedule <cron>', 'recurring delivery, cron in Asia/Taipei (e.g. "0 2 * * *")')
      .option('--rules <file>', "the agency's management rules (PDF, ODT, DOCX or text)")
      .option('--scope <conditions>', "records needed (R3.4): 'FIELD in V1,V2; FIELD not-in V; FIELD from|to YYYY-MM-DD; FIELD within-days N', or all (see nia-link dataset show NAME)")
      .option('--scope-file <file>', 'the scope as JSON (schemas/scope.schema.json)')
      .option('--scope-justification <text>', 'with --scope all: why the whole dataset is necessary')
      .option('--max-subjects <n>', 'with the scope condition subjects: the most persons the subject list may name')
      .option('--max-ids-per-day <n>', 'online and batch query: identifiers a day (R3.5)', String(DEFAULT_MAX_IDS_PER_DAY))
      .option('--by <name>', 'who records it')
      .option('--json', 'print the link as JSON'),
  ).action(async (o) => {
    const view = await ctx.registry.apply(
      {
        agency: o.agency,
        dataset: o.dataset,
        fields: parseFieldList(o.fields),
        legalBasis: o.legalBasis,
        purpose: o.purpose,
        department: o.department,
        officer: o.officer,
        supervisor: o.supervisor,
        from: parseDate(o.from, '--from'),
        to: parseDate(o.to, '--to'),
        disposal: o.disposal,
        methods: methods(o.method),
        allowIps: splitList(o.allowIp),
        account: o.account,
        sshKeys: (o.sshKey ?? []).map((f: string) => readInputFile(f, 'SSH key').toString('utf8')),
        pgpKey: readInputFile(o.pgpKey, 'PGP key').toString('utf8'),
        schedule: o.schedule,
        rules: o.rules ? { filename: basename(o.rules), content: readInputFile(o.rules, 'rules document') } : undefined,
        push: pushEndpoint(o),
        email: o.email ? splitList(o.email) : undefined,
        clientCerts: clientCerts(o.clientCert),
        scope: { text: o.scope, json: o.scopeFile !== undefined ? readJsonFile(o.scopeFile, 'scope file') : undefined, justification: o.scopeJustification, maxSubjects: o.maxSubjects === undefined ? undefined : positiveInt(o.maxSubjects, '--max-subjects') },
        maxIdsPerDay: positiveInt(o.maxIdsPerDay, '--max-ids-per-day'),
      },
      actor(o.by),
    );
    if (o.json) return printJson(view);
    console.log(`link ${view.id} applied for ${view.agency}: pending NIA approval (nia-link link approve ${view.id})`);
    console.log(String(view.id));
  });

  link
    .command('approve <id>')
    .description("NIA's formal consent (form item 9, R3.3): the link becomes active")
    .option('--by <name>', 'approving officer')
    .option('--letter-no <text>', "number of NIA's reply letter (required, R-F9)")
    .option('--letter-date <date>', 'date of that letter, YYYY-MM-DD, not in the future (required)')
    .option('--stamped-form <file>', "the agency's stamped form (PDF, ODT, DOCX or text), stored as a document (required unless stored with link stamped-form)")
    .option('--json', 'print the link as JSON')
    .action(async (id, o) => {
      const stampedForm = o.stampedForm ? { filename: basename(o.stampedForm), content: readInputFile(o.stampedForm, 'stamped form') } : undefined;
      const view = await ctx.registry.approve(parseId(id, 'link'), { by: actor(o.by), letterNo: o.letterNo, letterDate: o.letterDate, stampedForm });
      if (o.json) return printJson(view);
      console.log(`link ${view.id} approved: active`);
    });

  link
    .command('stamped-form <id> <file>')
    .description("store the agency's stamped form of a pending link before approval (the console approves with the one on file)")
    .option('--by <name>', 'who records it')
    .action(async (id, file, o) => {
      const doc = await ctx.registry.addStampedForm(parseId(id, 'link'), { filename: basename(file), content: readInputFile(file, 'stamped form') }, actor(o.by));
      console.log(`stamped form of link ${id} stored as document ${doc.id} (${doc.mediaType}, ${doc.size} bytes, sha256 ${doc.sha256})`);
    });

  link
    .command('reject <id>')
    .description('refuse an application')
    .requiredOption('--reason <text>', 'why')
    .option('--by <name>', 'deciding officer')
    .action(async (id, o) => {
      const view = await ctx.registry.reject(parseId(id, 'link'), o.reason, actor(o.by));
      console.log(`link ${view.id} rejected`);
    });

  link
    .command('show <id>')
    .description('a link with its current revision')
    .option('--json', 'print as JSON')
    .option('--history', 'also list revisions and change requests')
    .action(async (id, o) => {
      const linkId = parseId(id, 'link');
      const view = await ctx.registry.show(linkId);
      const history = o.history ? await ctx.registry.history(linkId) : undefined;
      const subjects = await subjectListSummary(ctx, linkId);
      if (o.json) return printJson({ ...view, ...(subjects ? { subjectList: subjects.json } : {}), ...(history ? { history } : {}) });
      printLink(view);
      if (subjects) console.log(subjects.line);
      if (history) {
        console.log('\nrevisions:');
        for (const r of history.revisions) console.log(`  ${r.number}  ${r.createdAt}${r.changeRequestId ? `  change ${r.changeRequestId}` : '  application'}`);
        console.log('change requests:');
        for (const c of history.changes) console.log(`  ${c.id}  ${c.kind}  ${c.status}  filed ${c.filedAt}${c.revision ? ` → revision ${c.revision}` : ''}`);
      }
    });

  link
    .command('form <id>')
    .description('the application/change form 申請暨異動書 of a revision, ready to print on A4 (HTML, or PDF by the --out name)')
    .option('--revision <n>', 'which revision (default: the current one)')
    .option('--out <file>', 'write FILE.html or FILE.pdf (default: the HTML on standard output)')
    .option('--by <name>', 'who prints it')
    .action(async (id, o) => {
      const out: string | undefined = o.out;
      const ext = out ? path.extname(out).toLowerCase() : '.html';
      if (!['.html', '.htm', '.pdf'].includes(ext)) throw new UserError(`--out ${out}: name it .html or .pdf`);
      const { form, output } = await ctx.services.forms.render(
        parseId(id, 'link'),
        { revision: o.revision !== undefined ? parseId(o.revision, '--revision') : undefined, format: ext === '.pdf' ? 'pdf' : 'html' },
        actor(o.by),
      );
      if (!out) return void process.stdout.write(output);
      writeOutputFile(out, output);
      console.log(`form of link ${form.linkId} revision ${form.revision} written to ${out} (${output.length} bytes)`);
    });

  link
    .command('list')
    .description('list links')
    .option('--status <status>', `only links in this status (${LINK_STATUSES.join(', ')})`)
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      if (o.status !== undefined && !(LINK_STATUSES as readonly string[]).includes(o.status)) {
        throw new UserError(`--status must be one of ${LINK_STATUSES.join(', ')}`);
      }
      const rows = await ctx.registry.list(o.status as LinkStatus | undefined);
      if (o.json) return printJson(rows);
      for (const l of rows) console.log(`${l.id}\t${l.status}\t${l.agency}\t${l.dataset}\trev ${l.revision}\t${l.from}–${l.to}\t${l.channels.join(',')}`);
    });

  addPushOptions(
    link
      .command('change <id>')
      .description(`file a change request (form item 6, R5.1): ${CHANGE_KINDS.join(', ')}`)
      .requiredOption('--kind <kind>', CHANGE_KINDS.join(' | '))
      .option('--value <value>', 'the new value (name, field list, scope conditions, CIDRs, methods, N, date)')
      .option('--file <file>', 'for rules and pgp-key: the new document or key; for scope: the scope as JSON')
      .option('--scope-justification <text>', 'scope: with --value all, why the whole dataset is necessary')
      .option('--account <user>', 'method: the SFTP account when adding sftp-pull')
      .option('--rules <file>', "a new version of the agency's management rules filed with this change (R5.2); without it the change names the newest on record")
      .option('--letter-no <text>', "stop: the reference of the agency's written request (required)")
      .option('--letter-date <date>', 'stop: the date of that letter, YYYY-MM-DD')
      .option('--by <name>', 'who files it')
      .option('--json', 'print the change request as JSON'),
  ).action(async (id, o) => {
    if (!(CHANGE_KINDS as readonly string[]).includes(o.kind)) throw new UserError(`--kind must be one of ${CHANGE_KINDS.join(', ')}`);
    const cr = await ctx.registry.fileChange(
      parseId(id, 'link'),
      o.kind as ChangeKind,
      {
        value: o.value,
        file: o.file ? { filename: basename(o.file), content: readInputFile(o.file, 'file') } : undefined,
        push: pushEndpoint(o),
        email: o.email ? splitList(o.email) : undefined,
        account: o.account,
        clientCerts: o.clientCert ? clientCerts(o.clientCert) : undefined,
        justification: o.scopeJustification,
        letterNo: o.letterNo,
        letterDate: o.letterDate,
        rules: o.rules ? { filename: basename(o.rules), content: readInputFile(o.rules, 'management rules') } : undefined,
      },
      actor(o.by),
    );
    if (o.json) return printJson(cr);
    console.log(`change request ${cr.id} (${cr.kind}) filed for link ${cr.linkId}: pending (nia-link change approve ${cr.id})`);
    console.log(String(cr.id));
  });
}

/** A subjects link's list in force: its size and date only, never who is on it (R3.4). */
async function subjectListSummary(ctx: CliContext, linkId: number): Promise<{ json: unknown; line: string } | undefined> {
  if (!subjectsOf((await ctx.registry.state(linkId)).content.scope)) return undefined;
  const list = await batch.subjectListOf(ctx.cdb.db, linkId);
  if (!list) return { json: null, line: 'subject list      none uploaded yet: deliveries hold nothing until the agency uploads subjects-NAME.csv.pgp' };
  return { json: { count: list.count, key: list.keyField, inForceAt: list.inForceAt }, line: `subject list      ${list.count} persons by ${list.keyField}, in force since ${list.inForceAt}` };
}
