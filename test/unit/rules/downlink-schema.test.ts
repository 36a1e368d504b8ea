import { describe, expect, it } from 'vitest';
import { downlinkOf, mappingErrors, yaml } from './fixtures.js';

const FILE = 'maps/m.yaml';

/** A downlink file with one rule whose `to` and other fields are the given lines. */
function rule(...lines: string[]): string {
  return yaml('downlink:', '  - name: commands', ...lines);
}

const FROM = '    from: iot.commands';
const TO = '    to: { topic: "devices/{key}/commands" }';

describe('downlink rules: sources', () => {
  it('reads a topic name, a list of names, or a map with topic, group and start', () => {
    const router = downlinkOf(
      yaml(
        'downlink:',
        '  - { name: a, from: iot.a, to: { topic: x } }',
        '  - { name: b, from: [iot.b, iot.c], to: { topic: x } }',
        '  - name: c',
        '    from: { topic: iot.d, group: g1, start: latest }',
        '    to: { topic: x }',
        '  - name: d',
        "    from: { pattern: 'iot\\.e\\..+' }",
        '    to: { topic: x }',
      ),
    );
    expect(router.ruleCount).toBe(4);
    expect(router.sources()).toEqual([
      { rule: 'a', topics: ['iot.a'], pattern: undefined, groupId: undefined, start: 'earliest' },
      {
        rule: 'b',
        topics: ['iot.b', 'iot.c'],
        pattern: undefined,
        groupId: undefined,
        start: 'earliest',
      },
      { rule: 'c', topics: ['iot.d'], pattern: undefined, groupId: 'g1', start: 'latest' },
      {
        rule: 'd',
        topics: undefined,
        pattern: /^(?:iot\.e\..+)$/,
        groupId: undefined,
        start: 'earliest',
      },
    ]);
    expect(router.kafkaTopics()).toEqual(['iot.a', 'iot.b', 'iot.c', 'iot.d']);
  });

  it.each([
    ['    from: { topic: a, pattern: b }', '3:23: write either "topic" or "pattern", not both'],
    [
      '    from: { group: g }',
      '3:11: missing required field "topic" (a name or a list) or "pattern"',
    ],
    [
      '    from: { topic: a, start: earlyest }',
      '3:30: unknown start "earlyest" (did you mean "earliest"?)',
    ],
    ['    from: { topic: a, grup: g }', '3:23: unknown field "grup" (did you mean "group"?)'],
    ['    from: { topic: a, group: "" }', '3:30: a consumer group id must not be empty'],
    [
      "    from: { pattern: 'a(' }",
      '3:22: invalid regular expression: Invalid regular expression: /^(?:a()$/: Unterminated group',
    ],
    ['    from: []', '3:11: expected at least one Kafka topic'],
    ['    from: [a, a]', '3:15: topic "a" is listed twice'],
    [
      '    from: bad topic',
      '3:11: a Kafka topic name may only contain letters, digits, ".", "_" and "-"',
    ],
    ['    from: "{key}"', '3:11: expected a fixed topic name (no variables)'],
  ])('rejects %s', (from, problem) => {
    expect(mappingErrors(rule(from, TO))).toEqual([`${FILE}:${problem}`]);
  });

  it('requires rules reading one topic to agree on group and start', () => {
    const errors = mappingErrors(
      yaml(
        'downlink:',
        '  - { name: a, from: { topic: [t1, t2], group: g }, to: { topic: x } }',
        '  - { name: b, from: { topic: t2 }, to: { topic: x } }',
        "  - { name: c, from: { pattern: 't.*', group: g, start: latest }, to: { topic: x } }",
        '  - { name: d, from: { topic: t3, group: g }, to: { topic: x } }',
      ),
    );
    expect(errors).toEqual([
      `${FILE}:3:16: topic "t2" is also read by rule "a" (${FILE}:2:16) with group "g", start earliest; rules reading one topic need the same group and start, here the default group, start earliest`,
      `${FILE}:4:16: topic "t1" is also read by rule "a" (${FILE}:2:16) with group "g", start earliest; rules reading one topic need the same group and start, here group "g", start latest`,
      `${FILE}:5:16: topic "t3" is also read by rule "c" (${FILE}:4:16) with group "g", start latest; rules reading one topic need the same group and start, here group "g", start earliest`,
    ]);
  });
});

describe('downlink rules: targets', () => {
  it.each([
    ['    to: { topic: "devices/{kee}" }', '4:27: unknown variable "kee" (did you mean "key"?)'],
    [
      '    to: { topic: "d/{headers.id}" }',
      '4:21: unknown variable "headers.id" (did you mean "header.id"?)',
    ],
    ['    to: { topic: "d/{header.}" }', '4:21: a header name must not be empty'],
    [
      '    to: { topic: "d/{value.a..b}" }',
      '4:21: invalid value field "value.a..b" (names separated by ".", none empty)',
    ],
    [
      '    to: { topic: "d/{nope}" }',
      '4:21: unknown variable "nope" (available: key, topic, partition, offset, timestamp, header.<name>, value.<field>)',
    ],
    ['    to: { topic: "d/+/{key}" }', '4:18: an MQTT topic name contains a wildcard ("+" or "#")'],
    ['    to: { topic: "" }', '4:18: an MQTT topic name is empty'],
    [
      '    to: { topic: "$SYS/broker/{key}" }',
      '4:18: an MQTT topic name is in $SYS/, where only the bridge itself publishes',
    ],
    [
      '    to: { topic: $SYS }',
      '4:18: an MQTT topic name is in $SYS/, where only the bridge itself publishes',
    ],
    [
      '    to: { topic: x, responseTopic: "r/#" }',
      '4:36: an MQTT topic name contains a wildcard ("+" or "#")',
    ],
    ['    to: { topic: x, qos: 3 }', '4:26: expected 0, 1 or 2'],
    ['    to: { topic: x, retain: yes }', '4:29: expected true or false'],
    ['    to: { topic: x, qso: 1 }', '4:21: unknown field "qso" (did you mean "qos"?)'],
    ['    to: { qos: 1 }', '4:9: missing required field "topic"'],
    ['    to: { topic: x, expiry: { ttl: -1 } }', '4:36: expected a number of seconds (0 or more)'],
    [
      '    to: { topic: x, expiry: { ttl: 5, at: value.t } }',
      '4:39: write either "ttl" or "at", not both',
    ],
    [
      '    to: { topic: x, expiry: {} }',
      '4:29: missing required field "ttl" (seconds) or "at" (a time)',
    ],
    [
      '    to: { topic: x, expiry: { at: 5 } }',
      '4:35: expected "header.<name>" or "value.<field>"',
    ],
    [
      '    to: { topic: x, expiry: { at: payload.t } }',
      '4:35: expected "header.<name>" or "value.<field>"',
    ],
    ['    to: { topic: x, correlationData: value.c }', '4:38: expected "header.<name>"'],
    [
      '    to: { topic: x, userProperties: some }',
      '4:37: expected "all" or a list of header names',
    ],
    ['    to: { topic: x, userProperties: [a, a] }', '4:41: "a" is listed twice'],
  ])('rejects %s', (to, problem) => {
    expect(mappingErrors(rule(FROM, to))).toEqual([`${FILE}:${problem}`]);
  });

  it('rejects value fields that do not apply to the format, and a missing schema', () => {
    expect(mappingErrors(rule(FROM, TO, '    value: { format: raw, fields: [a] }'))).toEqual([
      `${FILE}:5:27: "fields" does not apply to format raw`,
    ]);
    expect(mappingErrors(rule(FROM, TO, '    value: { format: json, envelope: [topic] }'))).toEqual(
      [`${FILE}:5:28: unknown field "envelope"`],
    );
    expect(mappingErrors(rule(FROM, TO, '    value: { format: avro }'))).toEqual([
      `${FILE}:5:12: missing required field "schema" (the .avsc file, relative to this file), or schemaId: registry`,
    ]);
    expect(
      mappingErrors(rule(FROM, TO, '    value: { format: avro, schema: r.avsc, schemaId: -1 }'), {
        'r.avsc': '"string"',
      }),
    ).toEqual([`${FILE}:5:54: expected a schema registry id (an integer from 0 to 4294967295)`]);
  });

  it('shares one name space with uplink rules', () => {
    expect(
      mappingErrors(
        yaml(
          'uplink:',
          '  - { name: commands, from: a, to: { topic: t } }',
          'downlink:',
          '  - { name: commands, from: t, to: { topic: a } }',
        ),
      ),
    ).toEqual([`${FILE}:4:13: duplicate rule name "commands" (first defined at ${FILE}:2:13)`]);
  });

  it('never half-loads: one bad rule fails the file', () => {
    expect(
      mappingErrors(
        yaml(
          'downlink:',
          '  - { name: good, from: t, to: { topic: a } }',
          '  - { name: bad, from: t, to: { topic: a, qos: 5 } }',
        ),
      ),
    ).toEqual([`${FILE}:3:48: expected 0, 1 or 2`]);
  });
});
