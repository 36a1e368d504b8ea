import { describe, expect, it } from 'vitest';
import { ADMIN_ORIGIN, publishRequest, testRequest } from '../../../src/admin/message-request.js';

const limits = { maxTopicLevels: 8, maxTopicLength: 64 };

describe('publishRequest', () => {
  it('makes a broker message from $admin, QoS 0 and not retained by default', () => {
    const message = publishRequest({ topic: 'a/b', payload: 'hello' }, limits);
    expect(message).toMatchObject({
      topic: 'a/b',
      qos: 0,
      retain: false,
      properties: {},
      expiresAt: undefined,
      origin: { clientId: ADMIN_ORIGIN, username: undefined },
    });
    expect(message.payload.toString()).toBe('hello');
  });

  it('takes base64 payloads and MQTT 5 properties', () => {
    const before = Date.now();
    const message = publishRequest(
      {
        topic: 't',
        payload: 'AAEC/w==',
        payloadEncoding: 'base64',
        qos: 2,
        retain: true,
        userProperties: { a: '1', b: ['2', '3'] },
        contentType: 'application/octet-stream',
        responseTopic: 'replies/1',
        correlationData: 'c-1',
        payloadFormatIndicator: false,
        messageExpiryInterval: 60,
      },
      limits,
    );
    expect([...message.payload]).toEqual([0, 1, 2, 255]);
    expect(message).toMatchObject({ qos: 2, retain: true });
    expect(message.properties).toMatchObject({
      userProperties: { a: '1', b: ['2', '3'] },
      contentType: 'application/octet-stream',
      responseTopic: 'replies/1',
      payloadFormatIndicator: false,
    });
    expect(message.properties.correlationData?.toString()).toBe('c-1');
    expect(message.expiresAt).toBeGreaterThanOrEqual(before + 60_000);
  });

  it.each([
    [{}, /topic: required/],
    [{ topic: 'a/+' }, /wildcard/],
    [{ topic: '' }, /empty topic/],
    [{ topic: 'a/b/c/d/e/f/g/h/i' }, /mqtt\.maxTopicLevels/],
    [{ topic: 'x'.repeat(65) }, /mqtt\.maxTopicLength/],
    [{ topic: 't', qos: 3 }, /qos: must be an integer from 0 to 2/],
    [{ topic: 't', retain: 'yes' }, /retain: must be true or false/],
    [{ topic: 't', payload: 5 }, /payload: must be a string/],
    [{ topic: 't', payload: 'a$b', payloadEncoding: 'base64' }, /payload: not base64/],
    [{ topic: 't', payloadEncoding: 'hex' }, /utf8 or base64/],
    [{ topic: 't', userProperties: { a: 1 } }, /userProperties\.a/],
    [{ topic: 't', userProperties: ['a'] }, /userProperties: must be an object/],
    [{ topic: 't', responseTopic: 'r/#' }, /responseTopic: wildcard/],
    [{ topic: 't', Qos: 1 }, /unknown field Qos/],
  ])('refuses %j', (body, problem) => {
    expect(() => publishRequest(body, limits)).toThrow(problem);
  });
});

describe('testRequest', () => {
  it('makes the publish of a dry run, user properties as pairs in order', () => {
    expect(
      testRequest(
        { topic: 't/1', payload: '{}', username: 'u', userProperties: { a: ['1', '2'], b: '3' } },
        limits,
      ),
    ).toEqual({
      topic: 't/1',
      payload: Buffer.from('{}'),
      qos: 0,
      retain: false,
      clientId: 'mappings-test',
      username: 'u',
      userProperties: [
        ['a', '1'],
        ['a', '2'],
        ['b', '3'],
      ],
      contentType: undefined,
    });
  });

  it('takes no publish-only field', () => {
    expect(() => testRequest({ topic: 't', responseTopic: 'r' }, limits)).toThrow(/unknown field/);
  });
});
