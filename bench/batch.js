#!/usr/bin/env node
// Batch request benchmark (R2.2): 100 000 identifiers against ROWS entry_exit records, from the end of
// the upload to the signed, encrypted result in /outbox, against the shell doing the same in the same
// run: `gpg -d request | sqlite3` (a temporary table of the identifiers, joined) `-csv | gpg --sign --encrypt`.
// Usage: npm run bench:batch [-- ROWS [IDS]]   (default 5000000 and 100000); BENCH_ROUNDS (default 3)
'use strict';
const { execFileSync, spawnSync } = require('node:child_process');
const { rmSync, statSync, writeFileSync } = require('node:fs');
const path = require('node:path');

const { extractWorld } = require('./extract-world');
const ROWS = Number(process.argv[2]) > 0 ? Number(process.argv[2]) : 5_000_000;
const IDS = Number(process.argv[3]) > 0 ? Number(process.argv[3]) : 100_000;
const ROUNDS = Math.max(1, Number(process.env.BENCH_ROUNDS) || 3);

// Every field, the whole dataset, and batch requests: the same link the shell stands in for.
const { work, data, nl, gpg, timed, close, fpr, fields, link } = extractWorld([
  '--scope', 'all', '--scope-justification', 'bench: the whole dataset',
  '--method', 'sftp-pull,batch-query', '--max-ids-per-day', String(IDS),
]);

try {
  // NIA's primary key (the one `key export-signing` gives agencies), by its user id: requests are encrypted to it.
  const niaFpr = gpg('--with-colons', '--list-keys', 'nia-link@immigration.gov.tw').toString().split('\n').find((l) => l.startsWith('fpr')).split(':')[9];
  nl('seed', '--rows', String(ROWS), '--dataset', 'entry_exit', '--seed', '7');
  const src = path.join(data, 'source.db');
  // IDS persons spread over the whole table (every k-th person by identifier), as the agency sends them.
  const persons = Number(execFileSync('sqlite3', [src, 'SELECT count(DISTINCT person_id) FROM entry_exit'], { encoding: 'utf8' }).trim());
  const step = Math.max(1, Math.floor(persons / IDS));
  const ids = execFileSync('sqlite3', [src, `SELECT person_id FROM (SELECT person_id, row_number() OVER (ORDER BY person_id) AS n FROM (SELECT DISTINCT person_id FROM entry_exit)) WHERE n % ${step} = 0 LIMIT ${IDS}`], { encoding: 'utf8', maxBuffer: 1 << 28 }).trim().split('\n');
  const plain = path.join(work, 'request.csv');
  writeFileSync(plain, ['# reference: 基準測試第1號', 'person_id', ...ids].join('\n') + '\n');
  // The agency signs with its key and encrypts to NIA's (gpg's defaults otherwise, compression included).
  const request = path.join(work, 'request.csv.pgp');
  gpg('--trust-model', 'always', '-u', fpr, '--sign', '--encrypt', '-r', niaFpr, '-o', request, plain);

  const out = path.join(work, 'shell.csv.pgp');
  const cols = fields.map((f) => `e."${f}"`).join(', ');
  // The shell: decrypt (NIA's secret key is in this keyring), drop the comment lines, import the
  // identifiers into a temporary table, join, write CSV, sign + encrypt to the agency.
  const shellCmd =
    `gpg --batch --quiet -d '${request}' | grep -v '^#' | sqlite3 -csv -header '${src}' ` +
    `"CREATE TEMP TABLE ids (person_id TEXT PRIMARY KEY)" ".import --csv --skip 1 --schema temp /dev/stdin ids" ` +
    `"SELECT ids.person_id AS request_id, ${cols} FROM ids JOIN entry_exit e ON e.person_id = ids.person_id ORDER BY e.record_id" ` +
    `| gpg --batch --yes -z 0 --trust-model always --sign --local-user ${niaFpr} --encrypt --recipient ${fpr} -o '${out}'`;
  const rounds = [];
  for (let i = 0; i < ROUNDS; i++) {
    const shell = timed(shellCmd);
    shell.bytes = statSync(out).size;
    shell.rows = Number(spawnSync('bash', ['-o', 'pipefail', '-c', `gpg --batch --quiet -d '${out}' | wc -l`], { env: { ...process.env, GNUPGHOME: path.join(work, 'gnupg') }, encoding: 'utf8' }).stdout.trim()) - 1;
    rmSync(out);
    const r = spawnSync(process.execPath, [path.join(__dirname, 'batch-once.js'), data, link, request, 'bench'], { encoding: 'utf8' });
    if (r.status !== 0) throw new Error(r.stderr);
    const ours = JSON.parse(r.stdout);
    ours.bytes = statSync(ours.path).size;
    if (ours.rows !== shell.rows) throw new Error(`unequal work: nia-link wrote ${ours.rows} rows, the shell ${shell.rows}`);
    rounds.push({ shell, ours, ratio: shell.ms / ours.ms });
    console.log(`round ${i + 1}: shell ${(shell.ms / 1000).toFixed(2)} s, nia-link ${(ours.ms / 1000).toFixed(2)} s, ratio ${(shell.ms / ours.ms).toFixed(2)}× (${ours.rows} rows, ${ours.matched} of ${ours.ids} ids matched)`);
  }
  const best = (k) => rounds.map((r) => r[k]).sort((a, b) => a.ms - b.ms)[0];
  const s = best('shell');
  const o = best('ours');
  const result = {
    rows: ROWS,
    ids: IDS,
    resultRows: o.rows,
    matched: o.matched,
    shell: { s: s.ms / 1000, cpuS: s.cpuMs / 1000, maxRssMiB: s.maxRssKiB / 1024, bytes: s.bytes },
    niaLink: { s: o.ms / 1000, cpuS: o.cpuMs / 1000, maxRssMiB: o.maxRssKiB / 1024, bytes: o.bytes },
    ratio: s.ms / o.ms,
    rounds: rounds.map((r) => Math.round(r.ratio * 100) / 100),
  };
  writeFileSync(path.join(__dirname, 'batch-results.json'), JSON.stringify({ ...result, every: rounds }, null, 2) + '\n');
  console.log(JSON.stringify(result, null, 2));
} finally {
  close();
}
