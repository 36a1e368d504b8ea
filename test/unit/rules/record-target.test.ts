import { describe, expect, it } from 'vitest';
import { mapped, mappingErrors, publish, routerOf, yaml } from './fixtures.js';

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

function ruleTo(...toLines: string[]): string {
  return yaml(
    'uplink:',
    '  - name: r',
    '    from: d/{id}',
    '    to:',
    '      topic: t',
    ...toLines,
  );
}

describe('partition', () => {
  it.each([
    ['hash (default)', [], 'hash', undefined],
    ['hash', ['      partition: hash'], 'hash', undefined],
    ['round-robin', ['      partition: round-robin'], 'round-robin', undefined],
    ['a number', ['      partition: 7'], 'explicit', 7],
    ['a template of a capture', ['      partition: "{id}"'], 'explicit', 12],
    ['a template of a payload field', ['      partition: "{payload.zone}"'], 'explicit', 3],
  ])('%s', (_, lines, partitioner, partition) => {
    const [routed] = mapped(
      routerOf(ruleTo(...lines)).route(publish({ topic: 'd/12', payload: json({ zone: 3 }) })),
    );
    expect(routed?.partitioner).toBe(partitioner);
    expect(routed?.record.partition).toBe(partition);
  });

  it.each([
    ['abc', 'partition "{id}" is "abc", not a partition number'],
    ['-1', 'partition "{id}" is "-1", not a partition number'],
    ['2147483648', 'partition "{id}" is "2147483648", not a partition number'],
  ])('dead-letters a template that renders %s', (id, error) => {
    const routing = routerOf(ruleTo('      partition: "{id}"')).route(
      publish({ topic: `d/${id}` }),
    );
    expect(routing).toEqual({ kind: 'invalid', failures: [{ rule: 'r', error }], records: [] });
  });

  it.each([
    ['      partition: -1', '6:18'],
    ['      partition: 2147483648', '6:18'],
    ['      partition: 1.5', '6:18'],
  ])('refuses %s', (line, at) => {
    expect(mappingErrors(ruleTo(line))).toEqual([
      `maps/m.yaml:${at}: expected "hash", "round-robin", a partition number or a template`,
    ]);
  });

  it('suggests a strategy for a misspelling', () => {
    expect(mappingErrors(ruleTo('      partition: roundrobin'))).toEqual([
      'maps/m.yaml:6:18: expected "hash", "round-robin", a partition number or a template (did you mean "round-robin"?)',
    ]);
  });

  it('checks the variables of a partition template', () => {
    expect(mappingErrors(ruleTo('      partition: "{ide}"'))).toEqual([
      'maps/m.yaml:6:19: unknown variable "ide" (did you mean "id"?)',
    ]);
  });
});

describe('timestamp', () => {
  it('is the time of the publish by default', () => {
    const before = Date.now();
    const [routed] = mapped(routerOf(ruleTo()).route(publish({ topic: 'd/1' })));
    expect(routed?.record.timestamp).toBeGreaterThanOrEqual(before);
    expect(routed?.record.timestamp).toBeLessThanOrEqual(Date.now());
  });

  it.each([
    [1_700_000_000_123, 1_700_000_000_123],
    ['2024-06-01T12:00:00.5Z', Date.UTC(2024, 5, 1, 12, 0, 0, 500)],
    ['2024-06-01T14:00:00+02:00', Date.UTC(2024, 5, 1, 12)],
    ['2024-06-01', Date.UTC(2024, 5, 1)],
  ])('reads a payload field %j', (value, expected) => {
    const router = routerOf(ruleTo('      timestamp: payload.meta.at'));
    const [routed] = mapped(
      router.route(publish({ topic: 'd/1', payload: json({ meta: { at: value } }) })),
    );
    expect(routed?.record.timestamp).toBe(expected);
  });

  it.each([
    [
      { meta: { at: 'yesterday' } },
      'timestamp field "meta.at" is "yesterday": expected epoch milliseconds or an ISO 8601 date',
    ],
    [
      { meta: { at: -5 } },
      'timestamp field "meta.at" is -5: expected epoch milliseconds or an ISO 8601 date',
    ],
    [
      { meta: { at: 1.5 } },
      'timestamp field "meta.at" is 1.5: expected epoch milliseconds or an ISO 8601 date',
    ],
    [{ meta: {} }, 'payload field "meta.at" is missing'],
  ])('dead-letters %j', (payload, error) => {
    const router = routerOf(ruleTo('      timestamp: payload.meta.at'));
    expect(router.route(publish({ topic: 'd/1', payload: json(payload) }))).toEqual({
      kind: 'invalid',
      failures: [{ rule: 'r', error }],
      records: [],
    });
  });

  it.each([
    ['      timestamp: now', '6:18: expected "publish" or "payload.<field>"'],
    [
      '      timestamp: publsh',
      '6:18: expected "publish" or "payload.<field>" (did you mean "publish"?)',
    ],
    [
      '      timestamp: payload.',
      '6:18: invalid payload field "payload." (names separated by ".", none empty)',
    ],
  ])('refuses %s', (line, problem) => {
    expect(mappingErrors(ruleTo(line))).toEqual([`maps/m.yaml:${problem}`]);
  });
});

describe('payload fields in templates', () => {
  it('renders strings as they are and other JSON values as JSON', () => {
    const router = routerOf(
      ruleTo(
        '      key: "{payload.serial}"',
        '      headers: { tags: "{payload.tags}", none: "{payload.n}" }',
      ),
    );
    const [routed] = mapped(
      router.route(
        publish({ topic: 'd/1', payload: json({ serial: 'S-1', tags: ['a'], n: null }) }),
      ),
    );
    expect(routed?.record.key).toBe('S-1');
    expect(routed?.record.headers).toMatchObject({ tags: '["a"]', none: '' });
  });

  it('dead-letters a publish without the field', () => {
    const router = routerOf(ruleTo('      key: "{payload.serial}"'));
    expect(router.route(publish({ topic: 'd/1', payload: json({}) }))).toMatchObject({
      kind: 'invalid',
      failures: [{ rule: 'r', error: 'payload field "serial" is missing' }],
    });
  });
});

describe('mqttHeaders for MQTT 5 properties', () => {
  it('writes content type, response topic and correlation data when present', () => {
    const router = routerOf(
      ruleTo('      mqttHeaders: [contentType, responseTopic, correlationData, username]'),
    );
    const correlationData = Buffer.from([1, 2, 255]);
    const [full] = mapped(
      router.route(
        publish({
          topic: 'd/1',
          contentType: 'application/json',
          responseTopic: 'replies/1',
          correlationData,
        }),
      ),
    );
    expect(full?.record.headers).toEqual({
      'mqtt-content-type': 'application/json',
      'mqtt-response-topic': 'replies/1',
      'mqtt-correlation-data': correlationData,
    });
    const [bare] = mapped(router.route(publish({ topic: 'd/1' })));
    expect(bare?.record.headers).toEqual({});
  });
});
