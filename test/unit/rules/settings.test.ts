import { describe, expect, it } from 'vitest';
import { MappingError } from '../../../src/rules/errors.js';
import { compileMappings } from '../../../src/rules/load.js';
import { mappingErrors, publish, routerOf, yaml } from './fixtures.js';

const RULES = ['uplink:', '  - { name: json, from: j, to: { topic: t }, value: { format: json } }'];

describe('unmatched', () => {
  it('drops by default', () => {
    expect(routerOf(yaml(...RULES)).route(publish({ topic: 'x' }))).toEqual({
      kind: 'unmatched',
      records: [],
    });
  });

  it('rejects', () => {
    const router = routerOf(yaml('unmatched: { action: reject }', ...RULES));
    expect(router.route(publish({ topic: 'x' }))).toEqual({ kind: 'rejected' });
  });

  it('forwards to a default topic, raw, keyed by the MQTT topic', () => {
    const router = routerOf(yaml('unmatched: { action: forward, topic: iot.unmatched }', ...RULES));
    const from = publish({ topic: 'x/y', userProperties: [['p', '1']] });
    expect(router.route(from)).toEqual({
      kind: 'unmatched',
      records: [
        {
          rule: '(unmatched)',
          partitioner: 'hash',
          record: {
            topic: 'iot.unmatched',
            key: 'x/y',
            value: from.payload,
            partition: undefined,
            timestamp: expect.any(Number) as number,
            headers: { 'mqtt-topic': 'x/y', 'mqtt-client-id': 'client-1', p: '1' },
          },
        },
      ],
    });
    expect(router.kafkaTopics()).toEqual(['iot.unmatched', 't']);
  });

  it.each([
    [
      'unmatched: { action: ignore }',
      '1:22: unknown action "ignore" (one of: drop, reject, forward)',
    ],
    ['unmatched: { action: rejct }', '1:22: unknown action "rejct" (did you mean "reject"?)'],
    [
      'unmatched: { action: forward }',
      '1:12: missing required field "topic" (where action forward sends publishes)',
    ],
    ['unmatched: { action: drop, topic: x }', '1:28: "topic" is only for action forward'],
    [
      'unmatched: { action: forward, topic: "a b" }',
      '1:38: a Kafka topic name may only contain letters, digits, ".", "_" and "-"',
    ],
    [
      'unmatched: { action: forward, topic: "a.{x}" }',
      '1:38: expected a fixed topic name (no variables)',
    ],
    ['unmatched: {}', '1:12: missing required field "action"'],
  ])('refuses %s', (line, problem) => {
    expect(mappingErrors(yaml(line, ...RULES))).toEqual([`maps/m.yaml:${problem}`]);
  });
});

describe('deadLetter', () => {
  const router = routerOf(yaml('deadLetter: { topic: iot.dead }', ...RULES));

  it('turns a publish a rule cannot encode into one dead-letter record with the errors in headers', () => {
    const from = publish({
      topic: 'j',
      payload: Buffer.from('{oops'),
      username: 'u',
      userProperties: [['dead-letter-error', 'forged']],
    });
    const routing = router.route(from);
    expect(routing).toMatchObject({ kind: 'invalid', failures: [{ rule: 'json' }] });
    if (routing.kind !== 'invalid') return;
    expect(routing.records).toEqual([
      {
        rule: '(dead letter)',
        partitioner: 'hash',
        record: {
          topic: 'iot.dead',
          key: 'j',
          value: from.payload,
          partition: undefined,
          timestamp: expect.any(Number) as number,
          headers: {
            'mqtt-topic': 'j',
            'mqtt-client-id': 'client-1',
            'mqtt-username': 'u',
            'dead-letter-rule': ['json'],
            'dead-letter-error': [expect.stringMatching(/^payload is not valid JSON: /) as string],
          },
        },
      },
    ]);
  });

  it('sends none of the rule records when one of several matching rules fails', () => {
    const fanOut = routerOf(
      yaml(
        'deadLetter: { topic: iot.dead }',
        ...RULES,
        '  - { name: raw, from: j, to: { topic: r } }',
        '  - { name: json2, from: j, to: { topic: t2 }, value: { format: json } }',
      ),
    );
    const routing = fanOut.route(publish({ topic: 'j', payload: Buffer.from('x') }));
    expect(routing.kind).toBe('invalid');
    if (routing.kind !== 'invalid') return;
    expect(routing.failures.map((failure) => failure.rule)).toEqual(['json', 'json2']);
    expect(routing.records.map((r) => r.record.topic)).toEqual(['iot.dead']);
    expect(routing.records[0]?.record.headers['dead-letter-rule']).toEqual(['json', 'json2']);
  });

  it('refuses a topic that is not fixed', () => {
    expect(mappingErrors(yaml('deadLetter: { topic: "d.{clientId}" }', ...RULES))).toEqual([
      'maps/m.yaml:1:22: expected a fixed topic name (no variables)',
    ]);
  });
});

describe('settings across files', () => {
  it('may be written once', () => {
    const files = [
      { file: 'a.yaml', text: yaml('deadLetter: { topic: d }', 'unmatched: { action: reject }') },
      { file: 'b.yaml', text: yaml('', 'unmatched: { action: drop }', 'deadLetter: { topic: e }') },
    ];
    expect(() => compileMappings(files)).toThrow(MappingError);
    try {
      compileMappings(files);
    } catch (error) {
      expect((error as MappingError).message.split('\n')).toEqual([
        'b.yaml:2:1: "unmatched" is already set at a.yaml:2:1',
        'b.yaml:3:1: "deadLetter" is already set at a.yaml:1:1',
      ]);
    }
  });

  it('apply to the rules of every file', () => {
    const router = compileMappings([
      { file: 'a.yaml', text: yaml(...RULES) },
      { file: 'b.yaml', text: yaml('unmatched: { action: reject }') },
    ]).uplink;
    expect(router.route(publish({ topic: 'nothing' }))).toEqual({ kind: 'rejected' });
  });
});
