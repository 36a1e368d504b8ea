import { describe, expect, it } from 'vitest';
import { ScramServerConversation } from '../../../src/auth/scram-server.js';
import type { ScramServerOptions } from '../../../src/auth/scram-server.js';
import type { ScramVerifier } from '../../../src/auth/scram-verifier.js';
import { ScramClient, verifierFor } from '../../support/scram-client.js';

const SECRET = Buffer.alloc(32, 7);
const users = new Map<string, ScramVerifier>([
  ['user', verifierFor('pencil', Buffer.from('W22ZaJ0SNY7soEsUEjb6gQ==', 'base64'))],
  ['a,b=c', verifierFor('odd name', Buffer.from('salt-of-a-b-c'))],
]);

function server(options: Partial<ScramServerOptions> = {}): ScramServerConversation {
  return new ScramServerConversation({
    lookup: (name) => users.get(name),
    secret: SECRET,
    ...options,
  });
}

/** The server's answer to the client-first message, which must be a server-first. */
function serverFirst(conversation: ScramServerConversation, client: ScramClient): Buffer {
  const answer = conversation.start(client.first());
  if (!('serverFirst' in answer)) throw new Error(`start failed: ${answer.error}`);
  return answer.serverFirst;
}

describe('ScramServerConversation', () => {
  it('reproduces the RFC 7677 example exchange', () => {
    const conversation = server({ serverNonce: () => '%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0' });
    const first = conversation.start(Buffer.from('n,,n=user,r=rOprNGfwEbeRWgbNEkqO'));
    expect(first).toEqual({
      serverFirst: Buffer.from(
        'r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,s=W22ZaJ0SNY7soEsUEjb6gQ==,i=4096',
      ),
    });
    const final = conversation.finish(
      Buffer.from(
        'c=biws,r=rOprNGfwEbeRWgbNEkqO%hvYDpWUa2RaTCAfuxFIlj)hNlF$k0,p=dHzbZapWIk4jUhN+Ute9ytag9zjfMHgsqmmiz7AndVQ=',
      ),
    );
    expect(final).toEqual({
      serverFinal: Buffer.from('v=6rriTRBi23WpRR/wtup+mMhUZUn/dB5nLTJRsjl95G4='),
      username: 'user',
    });
  });

  it('authenticates a client that knows the password, and proves itself to it', () => {
    const client = new ScramClient('user', 'pencil');
    const conversation = server();
    const first = serverFirst(conversation, client);
    expect(first.toString()).toMatch(/^r=fyko\+d2lbbFgONRv9qkxdawL[A-Za-z0-9+/=]{24},s=/);
    const final = conversation.finish(client.final(first));
    expect(final).toEqual({ serverFinal: Buffer.from(client.serverFinal), username: 'user' });
  });

  it('decodes =2C and =3D in user names', () => {
    const client = new ScramClient('a,b=c', 'odd name');
    const conversation = server();
    const final = conversation.finish(client.final(serverFirst(conversation, client)));
    expect(final).toMatchObject({ username: 'a,b=c' });
  });

  it('refuses a wrong password', () => {
    const client = new ScramClient('user', 'pencil2');
    const conversation = server();
    expect(conversation.finish(client.final(serverFirst(conversation, client)))).toEqual({
      error: 'invalid-proof',
    });
  });

  it('refuses a client-final whose nonce is not the combined nonce', () => {
    const client = new ScramClient('user', 'pencil');
    const conversation = server();
    const first = serverFirst(conversation, client);
    const final = client.final(first, { nonce: `${client.clientNonce}forged` });
    expect(conversation.finish(final)).toEqual({ error: 'other-error' });
  });

  it('serves an unknown user a stable made-up salt and fails only at the proof', () => {
    const salts = [0, 1].map(() => {
      const client = new ScramClient('nobody', 'pencil');
      const conversation = server();
      const first = serverFirst(conversation, client);
      expect(conversation.finish(client.final(first))).toEqual({ error: 'invalid-proof' });
      return /,s=([^,]+),i=4096$/.exec(first.toString())?.[1];
    });
    expect(salts[0]).toMatch(/^[A-Za-z0-9+/]{22}==$/);
    expect(salts[1]).toBe(salts[0]);
    const other = serverFirst(server(), new ScramClient('somebody', 'x')).toString();
    expect(other).not.toContain(`s=${salts[0] ?? ''}`);
  });

  it('announces fakeIterations to unknown users', () => {
    const first = serverFirst(server({ fakeIterations: 10_000 }), new ScramClient('nobody', 'x'));
    expect(first.toString()).toMatch(/,i=10000$/);
  });

  it('refuses channel binding it does not support, politely', () => {
    const answer = server().start(Buffer.from('p=tls-unique,,n=user,r=abc'));
    expect(answer).toEqual({ error: 'channel-binding-not-supported' });
  });

  it('serves a client that supports channel binding but sees the server does not (y)', () => {
    const client = new ScramClient('user', 'pencil', 'nonce', 'y,,');
    const conversation = server();
    const final = conversation.finish(client.final(serverFirst(conversation, client)));
    expect(final).toMatchObject({ username: 'user' });
  });

  it('refuses a client-final whose channel binding is not its gs2 header', () => {
    const client = new ScramClient('user', 'pencil');
    const conversation = server();
    const first = serverFirst(conversation, client);
    const final = client.final(first, { binding: Buffer.from('y,,').toString('base64') });
    expect(conversation.finish(final)).toEqual({ error: 'channel-bindings-dont-match' });
  });

  it.each([
    ['no gs2 header', 'n=user,r=abc', 'invalid-encoding'],
    ['an unknown gs2 flag', 'x,,n=user,r=abc', 'invalid-encoding'],
    ['a mandatory extension', 'n,,m=ext,n=user,r=abc', 'extensions-not-supported'],
    ['no user name', 'n,,r=abc', 'invalid-encoding'],
    ['an empty user name', 'n,,n=,r=abc', 'invalid-username-encoding'],
    ['a bad =escape', 'n,,n=us=er,r=abc', 'invalid-username-encoding'],
    ['no nonce', 'n,,n=user', 'invalid-encoding'],
    ['a nonce with a space', 'n,,n=user,r=a b', 'invalid-encoding'],
    ['another authorization identity', 'n,a=admin,n=user,r=abc', 'other-error'],
  ])('refuses a client-first with %s', (_, message, error) => {
    expect(server().start(Buffer.from(message))).toEqual({ error });
  });

  it('accepts an authorization identity that is the user itself', () => {
    expect(server().start(Buffer.from('n,a=user,n=user,r=abc'))).toHaveProperty('serverFirst');
  });

  it('refuses bytes that are not UTF-8', () => {
    expect(server().start(Buffer.from([0x6e, 0x2c, 0x2c, 0xff]))).toEqual({
      error: 'invalid-encoding',
    });
  });

  it('refuses a client-final without a proof, and messages out of order', () => {
    const client = new ScramClient('user', 'pencil');
    const conversation = server();
    expect(conversation.finish(Buffer.from('c=biws,r=x,p=AAAA'))).toEqual({ error: 'other-error' });

    const again = server();
    const first = serverFirst(again, client);
    expect(again.finish(Buffer.from(`c=biws,r=${first.toString().slice(2, 50)}`))).toEqual({
      error: 'invalid-encoding',
    });
    // A failed exchange is over, even for a correct message.
    expect(again.finish(client.final(first))).toEqual({ error: 'other-error' });
    expect(again.start(client.first())).toEqual({ error: 'other-error' });
  });
});
