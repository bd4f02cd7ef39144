import { execFileSync } from 'node:child_process';
import { readFileSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { utils } from 'ssh2';
import { generateHostKey } from '../../src/crypto/ssh';
import { cli, tmpDir } from '../helpers/world';

const parses = (text: string) => {
  const k = utils.parseKey(text);
  return !(k instanceof Error) && !!(Array.isArray(k) ? k[0] : k);
};

describe("NIA's SSH keys", () => {
  it('every generated Ed25519 pair is well-formed (the SSH library alone gets about 1 in 256 wrong)', () => {
    // With ssh2's generator unchecked, 1 500 pairs hold a malformed one with probability 1 - (255/256)^1500 ≈ 99.7 %.
    for (let i = 0; i < 1500; i++) {
      const kp = generateHostKey('ed25519');
      if (!parses(kp.public) || !parses(kp.private)) throw new Error(`pair ${i} is malformed: ${kp.public}`);
    }
  });

  it('OpenSSH reads the generated keys: ssh-keygen derives the same public key from the private one', () => {
    const dir = tmpDir();
    try {
      for (const type of ['ed25519', 'rsa'] as const) {
        const kp = generateHostKey(type);
        const file = path.join(dir, type);
        writeFileSync(file, kp.private, { mode: 0o600 });
        const derived = execFileSync('ssh-keygen', ['-y', '-f', file], { encoding: 'utf8' }).trim().split(' ').slice(0, 2).join(' ');
        expect(derived).toBe(kp.public.trim().split(' ').slice(0, 2).join(' '));
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a malformed host key file is named in a one-line error, not an internal error', () => {
    const dir = tmpDir();
    try {
      expect(cli(dir, ['init']).code).toBe(0);
      const pub = path.join(dir, 'keys', 'ssh_host_ed25519_key.pub');
      const [type, blob] = readFileSync(pub, 'utf8').trim().split(' ');
      writeFileSync(pub, `${type} ${Buffer.from(blob, 'base64').subarray(0, -1).toString('base64')}\n`);
      const r = cli(dir, ['key', 'host-fingerprint']);
      expect(r.code).not.toBe(0);
      expect(r.stderr.trim().split('\n')).toHaveLength(1);
      expect(r.stderr).toContain(pub);
      expect(r.stderr).toMatch(/not a well-formed OpenSSH public key/);
      expect(r.stderr).not.toMatch(/internal error|\s+at /);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
