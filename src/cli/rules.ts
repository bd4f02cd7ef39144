import type { Command } from 'commander';
import { RULES_TOPICS } from '../domain';
import { UserError } from '../errors';
import type { RulesVersion } from '../registry';
import { actor, basename, type CliContext, parseId, printJson, readInputFile, writeOutputFile } from './context';

function reviewSummary(v: RulesVersion): string {
  if (!v.review) return 'not reviewed';
  if (v.review.missing.length === 0) return `covers all ${RULES_TOPICS.length} topics (reviewed by ${v.review.reviewedBy})`;
  return `missing topic${v.review.missing.length > 1 ? 's' : ''} ${v.review.missing.join(', ')} (reviewed by ${v.review.reviewedBy})`;
}

export function register(program: Command, ctx: CliContext): void {
  const rules = program
    .command('rules')
    .description("agencies' management rules (應用移民資訊管理規定, R4.1): versions and the eight-topic review");

  rules
    .command('add')
    .description('store a new version of an agency\'s rules (PDF, ODT, DOCX or text; checked by content, never opened); with --link, file a rules change request')
    .requiredOption('--agency <code>', 'the agency')
    .requiredOption('--file <file>', 'the rules document')
    .option('--link <id>', 'an approved link to point at this version once it is reviewed (change request, point 5)')
    .option('--by <name>', 'who records it')
    .option('--json', 'print the version as JSON')
    .action(async (o) => {
      const r = await ctx.services.rules.add(
        { agency: o.agency, file: { filename: basename(o.file), content: readInputFile(o.file, 'rules document') }, linkId: o.link !== undefined ? parseId(o.link, 'link') : undefined },
        actor(o.by),
      );
      if (o.json) return printJson(r);
      const d = r.document;
      console.log(`management rules of ${d.agency}: version ${d.version} stored as document ${d.id} (${d.mediaType.split(';')[0]}, ${d.size} bytes, sha256 ${d.sha256})`);
      console.log(`review it: nia-link rules review ${d.id} --covers 1,2,3,4,5,6,7,8`);
      if (r.changeId !== null) console.log(`change request ${r.changeId} (rules) filed for link ${o.link}: approve it once the version is reviewed (nia-link change approve ${r.changeId})`);
      console.log(String(d.id));
    });

  rules
    .command('review [id]')
    .description('record which of the eight topics of point 4 a rules version covers; the newest review is the one in force')
    .option('--link <id>', "review the link's current rules version instead of naming the document")
    .requiredOption('--covers <list>', 'topic numbers the rules cover, e.g. 1,2,3,4,5,6,7,8 (or 1-8)')
    .option('--note <text>', "the reviewer's note")
    .option('--by <name>', 'reviewer')
    .option('--json', 'print the version as JSON')
    .action(async (id, o) => {
      if ((id === undefined) === (o.link === undefined)) throw new UserError('name the rules version: `rules review DOCUMENT_ID` or `rules review --link LINK_ID`');
      const target = id !== undefined ? { documentId: parseId(id, 'document') } : { linkId: parseId(o.link, 'link') };
      const v = await ctx.services.rules.review(target, o.covers, o.note, actor(o.by));
      if (o.json) return printJson(v);
      console.log(`management rules of ${v.agency} version ${v.version} (document ${v.id}): ${reviewSummary(v)}`);
    });

  rules
    .command('list')
    .description('rules versions with their review status')
    .option('--agency <code>', "only this agency's")
    .option('--link <id>', 'only those a link pointed at or was filed for')
    .option('--json', 'print a JSON array')
    .action(async (o) => {
      const rows = await ctx.services.rules.list({ agency: o.agency, linkId: o.link !== undefined ? parseId(o.link, 'link') : undefined });
      if (o.json) return printJson(rows);
      for (const v of rows) console.log([v.id, v.agency, `v${v.version}`, v.linkId ?? '-', v.filename, v.createdAt, reviewSummary(v)].join('\t'));
    });

  rules
    .command('show <id>')
    .description('a rules version: the checklist in force and every review')
    .option('--json', 'print as JSON')
    .action(async (id, o) => {
      const v = await ctx.services.rules.show(parseId(id, 'document'));
      if (o.json) return printJson(v);
      console.log(`document ${v.id}: management rules of ${v.agency}, version ${v.version}${v.linkId ? `, filed for link ${v.linkId}` : ''}`);
      console.log(`file      ${v.filename} (${v.mediaType}, ${v.size} bytes)\nsha256    ${v.sha256}\nstored    ${v.createdAt}\nreview    ${reviewSummary(v)}`);
      for (const t of RULES_TOPICS) console.log(`  [${v.review?.covers.includes(t.n) ? 'x' : ' '}] ${t.n}. ${t.zh} — ${t.en}`);
      for (const r of v.reviews) console.log(`reviewed ${r.reviewedAt} by ${r.reviewedBy}: covers ${r.covers.join(',')}${r.note ? ` — ${r.note}` : ''}`);
    });

  rules
    .command('export <id>')
    .description('write the stored document to a file, byte for byte (never opened here)')
    .requiredOption('--out <file>', 'where to write it')
    .option('--by <name>', 'who exports it')
    .action(async (id, o) => {
      const { meta, content } = await ctx.services.rules.export(parseId(id, 'document'), actor(o.by));
      writeOutputFile(o.out, content);
      console.log(`document ${meta.id} (${meta.filename}, sha256 ${meta.sha256}) written to ${o.out}`);
    });
}
