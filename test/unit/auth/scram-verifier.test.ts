import { describe, expect, it } from 'vitest';
import {
  formatVerifier,
  hashPassword,
  parseVerifier,
  verifyPassword,
} from '../../../src/auth/scram-verifier.js';
import { verifierFor } from '../../support/scram-client.js';

/** RFC 7677's example: user "user", password "pencil". */
const RFC_7677 = formatVerifier(
  verifierFor('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64')),
);

describe('password verifiers', () => {
  it('round-trips: a verifier accepts its password and no other', async () => {
    const verifier = await hashPassword('correct horse');
    // new verifiers: 100,000 iterations unless told otherwise
    expect(verifier).toMatch(/^SCRAM-SHA-256\$100000:[A-Za-z0-9+/]{22}==\$[^:]{44}:[^:]{44}$/);
    expect(await verifyPassword(verifier, 'correct horse')).toBe(true);
    expect(await verifyPassword(verifier, Buffer.from('correct horse'))).toBe(true);
    expect(await verifyPassword(verifier, 'correct horse ')).toBe(false);
    expect(await verifyPassword(verifier, '')).toBe(false);
  });

  it('salts each verifier anew and honours the iteration count', async () => {
    const [a, b] = await Promise.all([hashPassword('same'), hashPassword('same')]);
    expect(a).not.toBe(b);
    const slow = await hashPassword('same', { iterations: 5000 });
    expect(slow).toMatch(/^SCRAM-SHA-256\$5000:/);
    expect(await verifyPassword(slow, 'same')).toBe(true);
  });

  it('refuses iteration counts outside 4096 … 10,000,000', async () => {
    await expect(hashPassword('x', { iterations: 1000 })).rejects.toThrow(RangeError);
    await expect(hashPassword('x', { iterations: 4096.5 })).rejects.toThrow(RangeError);
  });

  it('checks passwords against the RFC 7677 example verifier', async () => {
    expect(RFC_7677).toBe(
      'SCRAM-SHA-256$4096:W22ZaJ0SNY7soEsUEjb6gQ==$WG5d8oPm3OtcPnkdi4Uo7BkeZkBFzpcXkuLmtbsT4qY=:wfPLwcE6nTWhTAmQ7tl2KeoiWGPlZqQxSrmfPwDl2dU=',
    );
    expect(await verifyPassword(RFC_7677, 'pencil')).toBe(true);
    expect(await verifyPassword(RFC_7677, 'pencil2')).toBe(false);
  });

  it.each([
    ['plain text', 'pencil', /expected a SCRAM-SHA-256\$/],
    ['another mechanism', 'SCRAM-SHA-1$4096:c2FsdA==$a:b', /expected a SCRAM-SHA-256\$/],
    ['no salt', 'SCRAM-SHA-256$4096$a:b', /<iterations>:<salt>/],
    ['too few iterations', RFC_7677.replace('$4096:', '$100:'), /iterations must be/],
    ['iterations that are not a number', RFC_7677.replace('$4096:', '$4k:'), /iterations/],
    ['a salt that is not base64', RFC_7677.replace('W22Z', 'W2%Z'), /salt is not base64/],
    ['a short key', RFC_7677.replace('WG5d8oPm', 'WG5d'), /must be 32 bytes/],
    ['a third key', `${RFC_7677}:AAAA`, /<StoredKey>:<ServerKey>/],
  ])('says what is wrong with %s, without repeating it', (_, text, problem) => {
    const parsed = parseVerifier(text);
    expect(parsed).toEqual({ problem: expect.stringMatching(problem) as string });
    expect(JSON.stringify(parsed)).not.toContain('W22Z');
  });

  it('matches no password with a malformed verifier', async () => {
    expect(await verifyPassword('SCRAM-SHA-256$4096:AAAA$AAAA:AAAA', '')).toBe(false);
    expect(await verifyPassword('pencil', 'pencil')).toBe(false);
  });

  it('parses what it formats', () => {
    const parsed = parseVerifier(RFC_7677);
    expect('problem' in parsed ? parsed.problem : formatVerifier(parsed)).toBe(RFC_7677);
  });
});
