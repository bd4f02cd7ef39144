import { existsSync, lstatSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { createExclusive, ensureKeys, KEY_FILES } from '../../src/crypto';
import { cli, tmpDir } from '../helpers/world';

const VICTIM_TEXT = 'someone else\'s file\n';

describe('key files are never written through a planted symbolic link', () => {
  let dir: string;
  let keysDir: string;
  let victims: string;
  beforeEach(() => {
    dir = tmpDir();
    keysDir = path.join(dir, 'keys');
    victims = path.join(dir, 'elsewhere');
    mkdirSync(keysDir, { mode: 0o700 });
    mkdirSync(victims);
  });
  afterEach(() => rmSync(dir, { recursive: true, force: true }));

  /** A file the link points at: it must come out as it went in. */
  const victim = (name: string) => {
    const file = path.join(victims, name);
    writeFileSync(file, VICTIM_TEXT, { mode: 0o644 });
    return file;
  };

  it('a link at the temporary name an earlier version used (<key>.<pid>.tmp) is not followed: the victim is untouched, the keys are made', async () => {
    const planted: string[] = [];
    for (const name of Object.values(KEY_FILES)) {
      const target = victim(`${name}.victim`);
      symlinkSync(target, path.join(keysDir, `${name}.${process.pid}.tmp`));
      planted.push(target);
      // A link to where a key would go (a file that does not exist yet) must not be created either.
      symlinkSync(path.join(victims, `${name}.created`), path.join(keysDir, `${name}.pub.${process.pid}.tmp`));
    }
    const report = await ensureKeys(keysDir, new Date());
    expect(report.created).toEqual(expect.arrayContaining([KEY_FILES.signingPrivate, KEY_FILES.hostEd25519, KEY_FILES.queryKey, KEY_FILES.queryIdSecret]));
    for (const target of planted) expect(readFileSync(target, 'utf8')).toBe(VICTIM_TEXT);
    expect(readdirSync(victims).filter((f) => f.endsWith('.created'))).toEqual([]);
    for (const name of [KEY_FILES.signingPrivate, KEY_FILES.hostEd25519, KEY_FILES.hostRsa, KEY_FILES.clientEd25519, KEY_FILES.queryKey, KEY_FILES.queryIdSecret]) {
      const file = path.join(keysDir, name);
      expect([name, lstatSync(file).isFile(), statSync(file).mode & 0o777]).toEqual([name, true, 0o600]);
    }
    // No temporary file is left behind.
    expect(readdirSync(keysDir).filter((f) => f.endsWith('.tmp') && !lstatSync(path.join(keysDir, f)).isSymbolicLink())).toEqual([]);
  });

  it('O_EXCL creation refuses a path where a link (even one to nothing) is planted, and writes nothing through it', () => {
    const target = victim('target');
    const link = path.join(keysDir, 'planted');
    symlinkSync(target, link);
    expect(() => createExclusive(link, 'secret', 0o600)).toThrow(/EEXIST/);
    expect(readFileSync(target, 'utf8')).toBe(VICTIM_TEXT);
    const dangling = path.join(keysDir, 'dangling');
    symlinkSync(path.join(victims, 'not-there'), dangling);
    expect(() => createExclusive(dangling, 'secret', 0o600)).toThrow(/EEXIST/);
    expect(existsSync(path.join(victims, 'not-there'))).toBe(false);
  });

  it('`nia-link init` with links planted at the final names: a public key file\'s link is replaced, not written through; a link to nothing at a private key is refused in one line', () => {
    const keys = path.join(dir, 'data', 'keys');
    mkdirSync(keys, { recursive: true, mode: 0o700 });
    const pub = victim('pub');
    symlinkSync(pub, path.join(keys, KEY_FILES.signingPublic));
    symlinkSync(path.join(victims, 'hmac'), path.join(keys, KEY_FILES.queryIdSecret));
    const r = cli(path.join(dir, 'data'), ['init']);
    expect(r.code).not.toBe(0);
    expect(r.stderr.trim().split('\n')).toHaveLength(1);
    expect(r.stderr).toMatch(/query-id-hmac\.key is a symbolic link to nothing/);
    expect(existsSync(path.join(victims, 'hmac'))).toBe(false);
    expect(readFileSync(pub, 'utf8')).toBe(VICTIM_TEXT);
    // The signing key was made before the refusal: its public half replaced the link itself.
    expect(lstatSync(path.join(keys, KEY_FILES.signingPublic)).isFile()).toBe(true);
    expect(readFileSync(path.join(keys, KEY_FILES.signingPublic), 'utf8')).toMatch(/BEGIN PGP PUBLIC KEY BLOCK/);
    // Once the link is gone, init completes.
    rmSync(path.join(keys, KEY_FILES.queryIdSecret));
    expect(cli(path.join(dir, 'data'), ['init']).code).toBe(0);
    expect(statSync(path.join(keys, KEY_FILES.queryIdSecret)).mode & 0o777).toBe(0o600);
  });
});
