import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { createLogger } from '../../../src/observability/logger.js';

function capture(): { stream: Writable; text: () => string } {
  let text = '';
  const stream = new Writable({
    write(chunk: Buffer, _encoding, done) {
      text += chunk.toString();
      done();
    },
  });
  return { stream, text: () => text };
}

describe('logger', () => {
  it('never writes secrets, wherever they sit in a logged object', () => {
    const { stream, text } = capture();
    const log = createLogger({ level: 'info', pretty: false }, stream);
    log.info({ password: 'hunter2' }, 'top level');
    log.info({ sasl: { mechanism: 'scram-sha-512', username: 'u', password: 'hunter2' } }, 'sasl');
    log.info({ config: { kafka: { sasl: { password: 'hunter2' }, ssl: { key: 'PEM' } } } }, 'deep');
    log.info({ broker: { token: 'eyJhbGciOi' } }, 'token');
    const lines = text().trim().split('\n');
    expect(lines).toHaveLength(4);
    expect(text()).not.toMatch(/hunter2|PEM|eyJhbGciOi/);
    expect(text()).toContain('[redacted]');
  });
});
