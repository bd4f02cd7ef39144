import { readFileSync } from 'node:fs';
import { z } from 'zod';
import type { ControlDb } from '../db';
import * as checkpoints from '../db/repositories/logCheckpoints';
import * as repo from '../db/repositories/usageLog';
import { UserError } from '../errors';
import { canonicalJson } from './chain';
import { installationVerifier, loadSigner, readVerifier, signText, type Verifier } from './signatures';
import { checkChain } from './verify';
import { liveStart } from './walk';

export type CheckpointRow = checkpoints.CheckpointRow;

/** What NIA signs: the log had `seq` records ending in `hash` at time `at`. */
export function checkpointStatement(c: { seq: number; hash: string; at: string }): string {
  return canonicalJson({ type: 'nia-link.usage-log-checkpoint', seq: c.seq, hash: c.hash, at: c.at });
}

export interface CheckpointResult {
  created: boolean;
  checkpoint: CheckpointRow;
}

/**
 * Sign the current head. Only what verifies is signed: the records since the newest checkpoint (all
 * of them the first time) are checked first, so a checkpoint never blesses a tampered log. No new
 * checkpoint when the head has not moved.
 */
export async function createCheckpoint(cdb: ControlDb, keysDir: string, now: Date): Promise<CheckpointResult> {
  const head = await repo.head(cdb.db);
  if (!head) throw new UserError('the usage log is empty: nothing to checkpoint yet', 'checkpoint.empty-log', 'refused');
  const newest = await checkpoints.newest(cdb.db);
  if (newest && newest.seq === head.seq && newest.hash === head.hash) return { created: false, checkpoint: newest };

  if (newest && newest.seq > head.seq) {
    throw new UserError(`the usage log ends at seq ${head.seq} but was checkpointed at seq ${newest.seq}: records were removed; no checkpoint signed; run \`nia-link log verify\``, 'log.broken');
  }
  let start = await liveStart(cdb);
  if (newest && newest.seq >= start.seq) {
    const r = await repo.bySeq(cdb.db, newest.seq);
    if (!r || r.hash !== newest.hash) {
      throw new UserError(`the usage log no longer matches its checkpoint at seq ${newest.seq}: no checkpoint signed; run \`nia-link log verify\``, 'log.broken');
    }
    start = { seq: newest.seq + 1, prevHash: newest.hash };
  }
  if (start.seq <= head.seq) {
    const r = await checkChain(cdb, start.seq, head.seq, start.prevHash);
    if (r.bad) throw new UserError(`the usage log does not verify at seq ${r.bad.seq} (${r.bad.reason}): no checkpoint signed; run \`nia-link log verify\``, 'log.broken');
  }
  const signer = await loadSigner(keysDir);
  const c = { seq: head.seq, hash: head.hash, at: now.toISOString() };
  const signature = await signText(checkpointStatement(c), signer.key);
  const row = await cdb.write((tx) => checkpoints.insert(tx, { ...c, keyFingerprint: signer.fingerprint, signature }));
  return { created: true, checkpoint: row };
}

export const listCheckpoints = (cdb: ControlDb): Promise<CheckpointRow[]> => checkpoints.all(cdb.db);

/** The file an auditor keeps off the box: every checkpoint, with the public key that checks them. */
export interface CheckpointExport {
  type: 'nia-link.usage-log-checkpoints';
  version: 1;
  exportedAt: string;
  signingKey: { fingerprint: string; armored: string };
  checkpoints: { seq: number; hash: string; at: string; keyFingerprint: string; signature: string; statement: string }[];
}

export async function exportCheckpoints(cdb: ControlDb, keysDir: string, now: Date): Promise<CheckpointExport> {
  const v = await installationVerifier(keysDir);
  return {
    type: 'nia-link.usage-log-checkpoints',
    version: 1,
    exportedAt: now.toISOString(),
    signingKey: { fingerprint: v.fingerprint, armored: v.armored },
    // The statement is what the signature covers, so `gpg --verify` can check one without nia-link.
    checkpoints: (await checkpoints.all(cdb.db)).map((c) => ({ seq: c.seq, hash: c.hash, at: c.at, keyFingerprint: c.keyFingerprint, signature: c.signature, statement: checkpointStatement(c) })),
  };
}

const hex64 = z.string().regex(/^[0-9a-f]{64}$/);
const exportSchema = z.object({
  type: z.literal('nia-link.usage-log-checkpoints'),
  version: z.literal(1),
  signingKey: z.object({ armored: z.string() }),
  checkpoints: z.array(z.object({ seq: z.number().int().positive(), hash: hex64, at: z.string(), signature: z.string() })),
});

/** A signed claim about the log that verify compares with the chain. */
export interface Pin {
  seq: number;
  hash: string;
  at: string;
  signature: string;
  source: string;
  verifier: Verifier;
}

/** Read an exported checkpoint file; its checkpoints are checked with the key it carries (the auditor's copy). */
export async function readCheckpointFile(file: string): Promise<Pin[]> {
  let parsed: z.infer<typeof exportSchema>;
  try {
    parsed = exportSchema.parse(JSON.parse(readFileSync(file, 'utf8')));
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    throw new UserError(`checkpoints file ${file}: ${code === 'ENOENT' ? 'no such file' : 'not a nia-link checkpoint export'}`, 'checkpoints.file', 'invalid');
  }
  const verifier = await readVerifier(parsed.signingKey.armored, `checkpoints file ${file}: signing key`);
  return parsed.checkpoints.map((c) => ({ ...c, source: file, verifier }));
}
