import type { Command } from 'commander';
import { UserError } from '../errors';
import { actor, basename, type CliContext, collect, parseDate, parseId, printJson, readInputFile, splitList } from './context';

const AUDIT_KINDS = ['periodic', 'ad-hoc', 'anomaly', 'self', 'sponsor'] as const;

/** R9.2: `--vendor ID` or `--vendor ID:evidence it gave`. */
function parseVendor(text: string): { id: number; evidence?: string } {
  const i = text.indexOf(':');
  const id = parseId((i < 0 ? text : text.slice(0, i)).trim(), '--vendor');
  const evidence = i < 0 ? undefined : text.slice(i + 1).trim() || undefined;
  return { id, evidence };
}

const document = (file: string | undefined, what: string) => (file === undefined ? undefined : { filename: basename(file), content: readInputFile(file, what) });

const auditLine = (a: { id: number; date: string; kind: string; auditor: string; summary: string; document: { filename: string } | null; vendors: { id: number; name: string }[] }) =>
  [a.id, a.date, a.kind, a.auditor, a.summary, a.document ? a.document.filename : '', a.vendors.map((v) => `vendor ${v.id} ${v.name}`).join('; ')].join('\t');

const renameOn = (c: { on?: string; letterNo?: string }) => ({ noticeDate: c.on, letterNo: c.letterNo });

/**
 * Audits, findings, suspension and resumption, termination, inactivity, disposal, reviews, the sweep
 * (R6.4–R13, R-F5). Every action happens now (the context's clock); a date for a past event is the
 * date of a document, given with its reference (--letter-no).
 */
export function register(program: Command, ctx: CliContext): void {
  const svc = () => ctx.services.compliance;
  const claim = (o: { letterNo?: string }, flag: string, on: string | undefined) => ({ on: on !== undefined ? parseDate(on, flag) : undefined, letterNo: o.letterNo });
  const LETTER = ['--letter-no <text>', 'reference of the document that dates it (a letter number; required)'] as const;

  const audit = program.command('audit').description('audits of agencies (R9.1)');
  audit
    .command('add')
    .description('record an audit')
    .requiredOption('--agency <code>', 'audited agency')
    .requiredOption('--kind <kind>', AUDIT_KINDS.join(' | '))
    .option('--date <date>', "the day of the audit, from its report: not in the future, at most 30 days back (default today)")
    .requiredOption('--summary <text>', 'what was audited and found')
    .option('--link <id>', 'the link audited')
    .option('--auditor <name>', 'who audited (default NIA; for --kind sponsor the sponsoring authority; for --kind self the agency)')
    .option('--file <file>', 'the audit report (PDF, ODT, DOCX or text; checked by content, never opened); required for --kind self')
    .option('--vendor <id[:evidence]>', "a contractor or sub-contractor of the agency's links that was audited, with the evidence it gave (repeatable, R9.2)", collect)
    .option('--from <date>', 'period covered from')
    .option('--to <date>', 'period covered to')
    .option('--json', 'print as JSON')
    .action(async (o) => {
      if (!(AUDIT_KINDS as readonly string[]).includes(o.kind)) throw new UserError(`--kind must be one of ${AUDIT_KINDS.join(', ')}`, 'audit.kind');
      const row = await svc().addAudit(
        {
          agency: o.agency,
          linkId: o.link !== undefined ? parseId(o.link, 'link') : undefined,
          kind: o.kind,
          auditor: o.auditor,
          date: o.date !== undefined ? parseDate(o.date, '--date') : undefined,
          summary: o.summary,
          periodFrom: o.from !== undefined ? parseDate(o.from, '--from') : undefined,
          periodTo: o.to !== undefined ? parseDate(o.to, '--to') : undefined,
          file: document(o.file, 'audit report'),
          vendors: (o.vendor ?? []).map(parseVendor),
        },
        actor(),
      );
      if (o.json) return printJson(row);
      console.log(`audit ${row.id} recorded (${row.kind}, ${row.auditor}, ${row.date})${row.vendors.length ? `; vendors audited: ${row.vendors.map((v) => `${v.id} ${v.name}`).join(', ')}` : ''}`);
      console.log(String(row.id));
    });
  audit
    .command('list')
    .option('--agency <code>', 'only this agency')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await svc().listAudits(o.agency);
      if (o.json) return printJson(rows);
      for (const a of rows) console.log(auditLine(a));
    });

  const selfaudit = program.command('selfaudit').description("agencies' self-audits, at least two a year (R6.4)");
  selfaudit
    .command('add')
    .description("record an agency's self-audit with its report, stored and checked like management rules (R6.4)")
    .requiredOption('--agency <code>', 'agency')
    .requiredOption('--file <file>', "the agency's self-audit report (PDF, ODT, DOCX or text; checked by content, never opened)")
    .option('--date <date>', 'date of the self-audit report: not in the future, at most 30 days back (default today)')
    .option('--from <date>', 'period covered from')
    .option('--to <date>', 'period covered to')
    .option('--summary <text>', 'summary', 'self-audit report')
    .option('--json', 'print as JSON')
    .action(async (o) => {
      const row = await svc().addAudit(
        {
          agency: o.agency,
          kind: 'self',
          date: o.date !== undefined ? parseDate(o.date, '--date') : undefined,
          summary: o.summary,
          periodFrom: o.from !== undefined ? parseDate(o.from, '--from') : undefined,
          periodTo: o.to !== undefined ? parseDate(o.to, '--to') : undefined,
          file: document(o.file, 'self-audit report'),
        },
        actor(),
      );
      if (o.json) return printJson(row);
      console.log(`self-audit ${row.id} of ${o.agency.toUpperCase()} recorded for ${row.date}: report ${row.document!.filename} (sha256 ${row.document!.sha256})`);
      console.log(String(row.id));
    });
  selfaudit
    .command('list')
    .option('--agency <code>', 'only this agency')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await svc().listAudits(o.agency, 'self');
      if (o.json) return printJson(rows);
      for (const a of rows) console.log(`${a.id}\t${a.date}\t${a.periodFrom ?? ''}–${a.periodTo ?? ''}\t${a.summary}\t${a.document?.filename ?? ''}`);
    });

  const finding = program.command('finding').description('findings with remediation deadlines (R7.1, R10.1)');
  finding
    .command('add')
    .description('record a finding; the agency gets a notice; past the deadline the link is suspended')
    .requiredOption('--link <id>', 'link')
    .requiredOption('--deadline <date>', 'remediation deadline, YYYY-MM-DD (the day itself is still in time)')
    .option('--text <text>', 'what must be explained and improved')
    .option('--audit <id>', 'the audit it came from')
    .option('--from-anomaly <id>', 'promote an anomaly: its summary and evidence records')
    .option('--evidence <seqs>', 'usage-log seqs, comma-separated')
    .option('--json', 'print as JSON')
    .action(async (o) => {
      const f = await svc().addFinding(
        {
          linkId: parseId(o.link, 'link'),
          deadline: parseDate(o.deadline, '--deadline'),
          text: o.text ?? '',
          auditId: o.audit !== undefined ? parseId(o.audit, 'audit') : undefined,
          anomalyId: o.fromAnomaly !== undefined ? parseId(o.fromAnomaly, 'anomaly') : undefined,
          evidence: splitList(o.evidence).map((x) => parseId(x, 'evidence seq')),
        },
        actor(),
      );
      if (o.json) return printJson(f);
      console.log(`finding ${f.id} on link ${f.linkId}, deadline ${f.deadline}`);
      console.log(String(f.id));
    });
  finding
    .command('remediate <id>')
    .description("record that the agency completed the improvements, on the day its document says (R7.2, R10.4)")
    .option('--completed-on <date>', 'the day they were completed, from the document: not in the future, not before the finding, at most 30 days back (default today)')
    .option(...LETTER)
    .option('--note <text>', 'what was done')
    .action(async (id, o) => {
      const f = await svc().remediate(parseId(id, 'finding'), { ...claim(o, '--completed-on', o.completedOn), note: o.note }, actor());
      console.log(`finding ${f.id} remediated on ${f.remediatedOn} (${f.remediationLetterNo})`);
    });
  finding
    .command('respond <id>')
    .description("record the agency's written explanation and improvement measures (說明及改善措施), due by the finding's deadline (R7.2)")
    .requiredOption('--file <file>', 'the agency\'s document (PDF, ODT, DOCX or text; checked by content, never opened)')
    .option('--note <text>', 'what it says, in short')
    .option('--json', 'print as JSON')
    .action(async (id, o) => {
      const r = await svc().respond(parseId(id, 'finding'), { file: document(o.file, 'response')!, note: o.note }, actor());
      if (o.json) return printJson(r);
      console.log(`finding ${r.findingId}: response ${r.id} recorded on ${r.receivedOn}${r.late ? ', after the deadline' : ''}: ${r.filename} (sha256 ${r.sha256})`);
    });
  finding
    .command('responses <id>')
    .description("the agency's responses to a finding (R7.2)")
    .option('--json', 'print a JSON array')
    .action(async (id, o) => {
      const rows = await svc().responses(parseId(id, 'finding'));
      if (o.json) return printJson(rows);
      for (const r of rows) console.log(`${r.id}\t${r.receivedOn}${r.late ? ' (late)' : ''}\t${r.filename}\t${r.sha256}\t${r.note ?? ''}`);
    });
  finding
    .command('extend <id>')
    .description('extend a deadline before it passes')
    .requiredOption('--deadline <date>', 'the new deadline')
    .action(async (id, o) => {
      const f = await svc().extend(parseId(id, 'finding'), parseDate(o.deadline, '--deadline'), actor());
      console.log(`finding ${f.id}: deadline now ${f.deadline}`);
    });
  ctx.preview(
    finding
      .command('list')
      .description('findings and their status (--at DAY: as of that day, a preview)')
      .option('--link <id>', 'only this link')
      .option('--json', 'print a JSON array')
      .action(async (o) => {
        const rows = await svc().listFindings(o.link !== undefined ? parseId(o.link, 'link') : undefined, ctx.previewDate());
        if (o.json) return printJson(rows);
        for (const f of rows) console.log(`${f.id}\tlink ${f.linkId}\t${f.status}\tdeadline ${f.deadline}\t${f.respondedOn ? `responded ${f.respondedOn}` : 'no response'}\t${f.text}`);
      }),
  );

  const link = program.commands.find((c) => c.name() === 'link');
  if (!link) throw new Error('the link command must be registered before compliance');
  link
    .command('suspend <id>')
    .description('suspend a link now (R10.1): SFTP logins, pushes and deliveries stop')
    .requiredOption('--reason <text>', 'why')
    .action(async (id, o) => {
      await svc().suspend(parseId(id, 'link'), o.reason, actor());
      console.log(`link ${id} suspended`);
    });
  link
    .command('remediated <id>')
    .description('a suspension without a finding: record that the agency completed the improvements, on the day its document says (R10.4)')
    .option('--completed-on <date>', 'the day they were completed, from the document: not in the future, not before the suspension, at most 30 days back (default today)')
    .option(...LETTER)
    .option('--note <text>', 'what was done')
    .action(async (id, o) => {
      const s = await svc().remediateSuspension(parseId(id, 'link'), { ...claim(o, '--completed-on', o.completedOn), note: o.note }, actor());
      console.log(`link ${s.linkId}: improvements completed on ${s.remediatedOn} (${s.remediationLetterNo}); the agency may request resumption`);
    });
  link
    .command('resume-request <id>')
    .description("record the agency's request to resume after remediation (R10.2, R10.3)")
    .action(async (id) => {
      const r = await svc().resumeRequest(parseId(id, 'link'), actor());
      console.log(r.message);
    });
  link
    .command('resume-approve <id>')
    .description("NIA agrees: the link is active again and its schedule restored")
    .action(async (id) => {
      await svc().resumeApprove(parseId(id, 'link'), actor());
      console.log(`link ${id} resumed`);
    });
  link
    .command('terminate <id>')
    .description("record the agency's written notice to end the link; at least one month ahead (R11.1)")
    .requiredOption('--effective <date>', 'the day the link ends: today or later, at least one month after the notice')
    .option('--notice-date <date>', 'the date the written notice was received: not in the future, at most 30 days back (default today)')
    .option(...LETTER)
    .action(async (id, o) => {
      await svc().terminate(parseId(id, 'link'), { effective: parseDate(o.effective, '--effective'), ...renameOn(claim(o, '--notice-date', o.noticeDate)) }, actor());
      const l = await ctx.registry.show(parseId(id, 'link'));
      console.log(l.status === 'terminated' ? `link ${id} ended on ${o.effective}` : `link ${id} ends on ${o.effective}`);
    });

  const inactivity = program.command('inactivity').description('links unused for over a year (R13.1)');
  inactivity
    .command('notice <link>')
    .description("issue NIA's written notice to the agency now")
    .action(async (id) => {
      await svc().inactivityNotice(parseId(id, 'link'), actor());
      console.log(`inactivity notice for link ${id} recorded`);
    });
  inactivity
    .command('confirm <link>')
    .description("record the agency's written confirmation that it has no need: the link stops")
    .option('--confirmed-on <date>', "the date of the agency's confirmation: not in the future, not before NIA's notice, at most 30 days back (default today)")
    .option(...LETTER)
    .action(async (id, o) => {
      await svc().inactivityConfirm(parseId(id, 'link'), claim(o, '--confirmed-on', o.confirmedOn), actor());
      console.log(`link ${id} ended (inactivity)`);
    });

  const disposal = program.command('disposal').description('handling of delivered data when a link ends (R-F5)');
  disposal
    .command('confirm <link>')
    .description("record the agency's confirmation: who, when, how")
    .requiredOption('--how <text>', 'destroyed, returned, …')
    .requiredOption('--by <name>', 'who did it')
    .option('--done-on <date>', "the day it was done, from the agency's document: not in the future, not before the link ended, at most 30 days back (default today)")
    .option(...LETTER)
    .action(async (id, o) => {
      const d = await svc().confirmDisposal(parseId(id, 'link'), { how: o.how, by: o.by, ...claim(o, '--done-on', o.doneOn) });
      console.log(`disposal for link ${d.linkId} confirmed by ${d.confirmedBy}: ${d.how}, done on ${d.doneOn} (${d.letterNo})`);
    });

  const review = program.command('review').description('periodic necessity reviews (R12.1)');
  review
    .command('add')
    .requiredOption('--link <id>', 'link')
    .requiredOption('--date <date>', 'date of the review')
    .requiredOption('--outcome <outcome>', 'keep | stop')
    .option('--note <text>', 'note')
    .action(async (o) => {
      if (o.outcome !== 'keep' && o.outcome !== 'stop') throw new UserError('--outcome must be keep or stop');
      const r = await svc().addReview(parseId(o.link, 'link'), parseDate(o.date, '--date'), o.outcome, o.note, actor());
      console.log(`review ${r.id} recorded${r.outcome === 'stop' ? `: file the stop request with nia-link link change ${r.linkId} --kind stop` : ''}`);
    });

  const compliance = program.command('compliance').description('apply the regulation\'s deadlines');
  compliance
    .command('sweep')
    .description('apply every deadline now (a daily job does it anyway) and print what changed')
    .option('--json', 'print as JSON')
    .action(async (o) => {
      const r = await svc().sweep(actor());
      if (o.json) return printJson(r);
      console.log(`sweep as of ${r.today}: ${r.changes.length} change${r.changes.length === 1 ? '' : 's'}`);
      for (const c of r.changes) console.log(`  ${c}`);
    });
  ctx.preview(
    compliance
      .command('status')
      .description('what is due, overdue or flagged (--at DAY: as of that day, a preview)')
      .option('--json', 'print a JSON array')
      .action(async (o) => {
        const rows = await svc().status(ctx.previewDate());
        if (o.json) return printJson(rows);
        for (const r of rows) console.log(r);
        if (rows.length === 0) console.log('nothing due');
      }),
  );

  const notice = program.command('notice').description('notices sent to agencies');
  notice
    .command('list')
    .option('--link <id>', 'only this link')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await svc().listNotices(o.link !== undefined ? parseId(o.link, 'link') : undefined);
      if (o.json) return printJson(rows);
      for (const n of rows) console.log(`${n.id}\t${n.createdAt}\tlink ${n.linkId}\t${n.kind}\t${n.recipients.join(',') || '(no e-mail)'}`);
    });
}
