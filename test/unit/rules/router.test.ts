import { describe, expect, it } from 'vitest';
import { compileMappings } from '../../../src/rules/load.js';
import type { Router } from '../../../src/rules/router.js';
import { publish, recordsOf, yaml } from './fixtures.js';

function router(...texts: string[]): Router {
  return compileMappings(texts.map((text, index) => ({ file: `m${index}.yaml`, text }))).uplink;
}

const telemetry = yaml(
  'uplink:',
  '  - name: telemetry',
  '    from: devices/{deviceId}/telemetry/#',
  '    to:',
  '      topic: iot.telemetry',
  '      key: "{deviceId}"',
  '      headers:',
  '        source: mqtt',
  '        device: "{deviceId}"',
);

describe('Router', () => {
  it('turns a matching publish into a record', () => {
    const from = publish({
      topic: 'devices/d1/telemetry/temp',
      userProperties: [['unit', 'C']],
    });
    const before = Date.now();
    expect(recordsOf(router(telemetry).route(from))).toEqual([
      {
        rule: 'telemetry',
        partitioner: 'hash',
        record: {
          topic: 'iot.telemetry',
          key: 'd1',
          value: from.payload,
          partition: undefined,
          timestamp: expect.toSatisfy((t: number) => t >= before && t <= Date.now()) as number,
          headers: {
            'mqtt-topic': 'devices/d1/telemetry/temp',
            'mqtt-client-id': 'client-1',
            unit: 'C',
            source: 'mqtt',
            device: 'd1',
          },
        },
      },
    ]);
  });

  it('passes the payload through unchanged', () => {
    const from = publish({ payload: Buffer.from([0, 255, 1]) });
    expect(recordsOf(router(telemetry).route(from))[0]?.record.value).toBe(from.payload);
  });

  it('fails a publish whose rendered Kafka topic Kafka would refuse, naming it', () => {
    const rules = router(
      yaml(
        'uplink:',
        '  - name: by-rest',
        '    from: bad/{rest#}',
        '    to: { topic: "iot.{rest}" }',
      ),
    );
    expect(rules.route(publish({ topic: 'bad/a/b' }))).toMatchObject({
      kind: 'invalid',
      failures: [
        {
          rule: 'by-rest',
          error: 'the Kafka topic "iot.a/b" may only contain letters, digits, ".", "_" and "-"',
        },
      ],
    });
    expect(rules.route(publish({ topic: 'bad/ok' }))).toMatchObject({ kind: 'mapped' });
  });

  it('returns no record when nothing matches', () => {
    expect(recordsOf(router(telemetry).route(publish({ topic: 'devices/d1/status' })))).toEqual([]);
    expect(recordsOf(router('').route(publish()))).toEqual([]);
  });

  it('keys by the MQTT topic when the rule has no key', () => {
    const routes = router(yaml('uplink:', '  - { name: all, from: "#", to: { topic: t } }'));
    expect(recordsOf(routes.route(publish({ topic: 'a/b' })))[0]?.record.key).toBe('a/b');
  });

  it('uses the partition of the rule, or none for hash', () => {
    const routes = router(
      yaml(
        'uplink:',
        '  - { name: fixed, from: a, to: { topic: t, partition: 4 } }',
        '  - { name: hashed, from: a, to: { topic: t, partition: hash } }',
      ),
    );
    expect(recordsOf(routes.route(publish({ topic: 'a' }))).map((r) => r.record.partition)).toEqual(
      [4, undefined],
    );
  });

  it('renders templated topics, keys and headers from captures and built-ins', () => {
    const routes = router(
      yaml(
        'uplink:',
        '  - name: events',
        '    from: "{site}/{deviceId}/events/{path#}"',
        '    to:',
        '      topic: "events.{site}"',
        '      key: "{clientId}/{deviceId}"',
        '      headers: { path: "{path}", qos: "{qos}", user: "{username}", topic: "{topic}" }',
        '      mqttHeaders: []',
      ),
    );
    const from = publish({ topic: 'plant1/d7/events/door/open', qos: 0, username: 'bob' });
    expect(recordsOf(routes.route(from))[0]?.record).toMatchObject({
      topic: 'events.plant1',
      key: 'client-1/d7',
      headers: { path: 'door/open', qos: '0', user: 'bob', topic: 'plant1/d7/events/door/open' },
    });
  });

  it('writes repeated user properties as a list and no MQTT headers for mqttHeaders: []', () => {
    const routes = router(
      yaml(
        'uplink:',
        '  - { name: props, from: p, to: { topic: t, mqttHeaders: [userProperties] } }',
        '  - { name: bare, from: p, to: { topic: t, mqttHeaders: [] } }',
      ),
    );
    const from = publish({
      topic: 'p',
      userProperties: [
        ['tag', 'a'],
        ['tag', 'b'],
      ],
    });
    expect(recordsOf(routes.route(from)).map((r) => r.record.headers)).toEqual([
      { tag: ['a', 'b'] },
      {},
    ]);
  });

  it('fans out to every matching rule in declaration order, across files', () => {
    const routes = router(
      yaml(
        'uplink:',
        '  - { name: first, from: "#", to: { topic: a } }',
        '  - { name: second, from: x/+, to: { topic: b } }',
      ),
      yaml('uplink:', '  - { name: third, from: x/y, to: { topic: c } }'),
    );
    expect(routes.ruleCount).toBe(3);
    expect(recordsOf(routes.route(publish({ topic: 'x/y' }))).map((r) => r.rule)).toEqual([
      'first',
      'second',
      'third',
    ]);
    expect(recordsOf(routes.route(publish({ topic: 'x/z' }))).map((r) => r.rule)).toEqual([
      'first',
      'second',
    ]);
  });

  it('produces one record per rule even if several of its filters match', () => {
    const routes = router(
      yaml(
        'uplink:',
        '  - name: either',
        '    from: ["devices/{id}/#", "devices/{id}/status"]',
        '    to: { topic: t, key: "{id}" }',
      ),
    );
    expect(recordsOf(routes.route(publish({ topic: 'devices/d2/status' })))).toHaveLength(1);
  });

  it('does not route "$" topics through leading wildcards', () => {
    const routes = router(yaml('uplink:', '  - { name: all, from: "#", to: { topic: t } }'));
    expect(recordsOf(routes.route(publish({ topic: '$SYS/broker/load' })))).toEqual([]);
  });

  // Most of the time goes to parsing 10,000 rules of YAML.
  it('routes correctly with 10,000 rules', { timeout: 30_000 }, () => {
    const lines = ['uplink:'];
    for (let i = 0; i < 10_000; i++) {
      lines.push(
        `  - { name: r${i}, from: "site${i}/{device}/#", to: { topic: "t${i}", key: "{device}" } }`,
      );
    }
    const routes = router(yaml(...lines));
    expect(routes.ruleCount).toBe(10_000);
    const routed = recordsOf(routes.route(publish({ topic: 'site7777/dev-1/temp' })));
    expect(routed.map(({ rule, record }) => [rule, record.topic, record.key])).toEqual([
      ['r7777', 't7777', 'dev-1'],
    ]);
    expect(recordsOf(routes.route(publish({ topic: 'site10000/dev-1' })))).toEqual([]);
  });

  it('lists the Kafka topics that do not depend on the publish', () => {
    const routes = router(
      yaml(
        'uplink:',
        '  - { name: a, from: a, to: { topic: z.topic } }',
        '  - { name: b, from: b, to: { topic: a.topic } }',
        '  - { name: c, from: c, to: { topic: z.topic } }',
        '  - { name: d, from: "{x}", to: { topic: "d.{x}" } }',
      ),
    );
    expect(routes.kafkaTopics()).toEqual(['a.topic', 'z.topic']);
  });
});
