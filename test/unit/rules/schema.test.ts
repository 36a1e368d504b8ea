import { describe, expect, it } from 'vitest';
import { formatIssue } from '../../../src/rules/errors.js';
import type { MappingIssue } from '../../../src/rules/errors.js';
import { readMappingFile } from '../../../src/rules/schema.js';
import { yaml } from './fixtures.js';

const FILE = 'mappings/example.yaml';

/** The formatted problems of one mapping file text. */
function problems(text: string): string[] {
  const issues: MappingIssue[] = [];
  readMappingFile(FILE, text, issues);
  return issues.sort((a, b) => a.line - b.line || a.column - b.column).map(formatIssue);
}

function rules(text: string) {
  const issues: MappingIssue[] = [];
  const result = readMappingFile(FILE, text, issues);
  expect(issues.map(formatIssue)).toEqual([]);
  return result.rules;
}

/** A valid rule; `lines` replace or extend its `to` map. */
function rule(...toLines: string[]): string {
  return yaml(
    'uplink:',
    '  - name: telemetry',
    '    from: devices/{deviceId}/telemetry/#',
    '    to:',
    '      topic: iot.telemetry',
    ...toLines,
  );
}

describe('readMappingFile: valid files', () => {
  it('reads a complete rule', () => {
    const [only, ...others] = rules(
      yaml(
        'uplink:',
        '  - name: telemetry',
        '    from: devices/{deviceId}/telemetry/#',
        '    to:',
        '      topic: iot.telemetry',
        '      key: "{deviceId}"',
        '      partition: 3',
        '      headers:',
        '        source: mqtt',
        '        device: "{deviceId}"',
        '      mqttHeaders: [qos, retain]',
        '    value:',
        '      format: raw',
      ),
    );
    expect(others).toEqual([]);
    expect(only?.name).toBe('telemetry');
    expect(only?.position).toEqual({ file: FILE, line: 2, column: 11 });
    expect(only?.filters.map((filter) => filter.text)).toEqual(['devices/{deviceId}/telemetry/#']);
    expect(only?.to.topic.constant).toBe('iot.telemetry');
    expect(only?.to.key?.source).toBe('{deviceId}');
    expect(only?.to.partition).toEqual({
      kind: 'fixed',
      partition: 3,
      position: { file: FILE, line: 7, column: 18 },
    });
    expect(only?.to.headers.map(([name, value]) => [name, value.source])).toEqual([
      ['source', 'mqtt'],
      ['device', '{deviceId}'],
    ]);
    expect(only?.to.mqttHeaders).toEqual(['qos', 'retain']);
    expect(only?.value).toEqual({ format: 'raw' });
  });

  it('applies the defaults', () => {
    const [only] = rules(rule());
    expect(only?.to.key).toBeUndefined();
    expect(only?.to.partition).toEqual({ kind: 'hash' });
    expect(only?.to.headers).toEqual([]);
    expect(only?.to.mqttHeaders).toEqual(['topic', 'clientId', 'userProperties']);
    expect(only?.value).toEqual({ format: 'raw' });
  });

  it('reads partition: hash as the producer partitioner and mqttHeaders: [] as none', () => {
    const [only] = rules(rule('      partition: hash', '      mqttHeaders: []'));
    expect(only?.to.partition).toEqual({ kind: 'hash' });
    expect(only?.to.mqttHeaders).toEqual([]);
  });

  it('accepts a list of filters', () => {
    const [only] = rules(
      yaml(
        'uplink:',
        '  - name: both',
        '    from: ["a/{id}/x", "b/{id}/{more#}"]',
        '    to: { topic: t, key: "{id}" }',
      ),
    );
    expect(only?.filters.map((filter) => filter.text)).toEqual(['a/{id}/x', 'b/{id}/{more#}']);
  });

  it.each([
    ['an empty file', ''],
    ['a file of comments', '# nothing yet\n'],
    ['an empty uplink key', 'uplink:\n'],
    ['an empty uplink list', 'uplink: []\n'],
  ])('accepts %s as no rules', (_, text) => {
    expect(rules(text)).toEqual([]);
  });

  it('follows YAML aliases', () => {
    const read = rules(
      yaml(
        'uplink:',
        '  - name: a',
        '    from: a/{id}',
        '    to:',
        '      topic: t',
        '      headers: &common { source: mqtt, device: "{id}" }',
        '  - name: b',
        '    from: b/{id}',
        '    to: { topic: t, headers: *common }',
      ),
    );
    expect(read.map((r) => r.to.headers.map(([name]) => name))).toEqual([
      ['source', 'device'],
      ['source', 'device'],
    ]);
  });
});

describe('readMappingFile: problems', () => {
  it('reports an unknown field with a suggestion', () => {
    expect(problems(rule('      partiton: 3'))).toEqual([
      'mappings/example.yaml:6:7: unknown field "partiton" (did you mean "partition"?)',
    ]);
    expect(problems(yaml('uplinks: []'))).toEqual([
      'mappings/example.yaml:1:1: unknown field "uplinks" (did you mean "uplink"?)',
    ]);
  });

  it('reports an unknown field without a suggestion when nothing is close', () => {
    expect(problems(rule('      destination: x'))).toEqual([
      'mappings/example.yaml:6:7: unknown field "destination"',
    ]);
  });

  it('reports missing required fields at the start of their map', () => {
    expect(problems(yaml('uplink:', '  - name: x', '    to: { key: k }'))).toEqual([
      'mappings/example.yaml:2:5: missing required field "from"',
      'mappings/example.yaml:3:9: missing required field "topic"',
    ]);
  });

  it.each([
    ['a map at the top', yaml('- a'), '1:1: expected a map'],
    ['a list of rules', yaml('uplink: { name: x }'), '1:9: expected a list'],
    ['a map for each rule', yaml('uplink:', '  - telemetry'), '2:5: expected a map'],
    [
      'a string name',
      yaml('uplink:', '  - name: 12', '    from: a', '    to: { topic: t }'),
      '2:11: expected a string',
    ],
    [
      'a name',
      yaml('uplink:', '  - name:', '    from: a', '    to: { topic: t }'),
      '2:5: expected a string',
    ],
    [
      'a non-empty name',
      yaml('uplink:', '  - name: ""', '    from: a', '    to: { topic: t }'),
      '2:11: a rule name must not be empty',
    ],
    [
      'filters as strings',
      yaml('uplink:', '  - name: x', '    from: 12', '    to: { topic: t }'),
      '3:11: expected a string or a list of strings',
    ],
    [
      'filter list items as strings',
      yaml('uplink:', '  - name: x', '    from: [a, 3]', '    to: { topic: t }'),
      '3:15: expected a string',
    ],
    [
      'at least one filter',
      yaml('uplink:', '  - name: x', '    from: []', '    to: { topic: t }'),
      '3:11: expected at least one topic filter',
    ],
    [
      'a map for to',
      yaml('uplink:', '  - name: x', '    from: a', '    to: [t]'),
      '4:9: expected a map',
    ],
    ['a string topic', rule().replace('iot.telemetry', '42'), '5:14: expected a string'],
    ['a string key', rule('      key: [a]'), '6:12: expected a string'],
    [
      'a valid partition',
      rule('      partition: -1'),
      '6:18: expected "hash", "round-robin", a partition number or a template',
    ],
    [
      'an integer partition',
      rule('      partition: 1.5'),
      '6:18: expected "hash", "round-robin", a partition number or a template',
    ],
    [
      'a partition at all',
      rule('      partition:'),
      '6:7: expected "hash", "round-robin", a partition number or a template',
    ],
    ['a map of headers', rule('      headers: [a]'), '6:16: expected a map'],
    [
      'string header values',
      rule('      headers:', '        version: 2'),
      '7:18: expected a string',
    ],
    ['a list of mqttHeaders', rule('      mqttHeaders: topic'), '6:20: expected a list'],
    [
      'known mqttHeaders entries',
      rule('      mqttHeaders: [topic, clientid]'),
      '6:28: unknown mqttHeaders entry "clientid" (did you mean "clientId"?)',
    ],
    [
      'known mqttHeaders entries (no suggestion)',
      rule('      mqttHeaders: [payload]'),
      '6:21: unknown mqttHeaders entry "payload" (one of: topic, clientId, username, qos, retain, contentType, responseTopic, correlationData, userProperties)',
    ],
    [
      'mqttHeaders entries once',
      rule('      mqttHeaders: [qos, qos]'),
      '6:26: "qos" is listed twice',
    ],
    [
      'a map for value',
      yaml('uplink:', '  - name: x', '    from: a', '    to: { topic: t }', '    value: raw'),
      '5:12: expected a map',
    ],
    [
      'a supported value format',
      yaml(
        'uplink:',
        '  - name: x',
        '    from: a',
        '    to: { topic: t }',
        '    value: { format: jsn }',
      ),
      '5:22: unknown value format "jsn" (did you mean "json"?)',
    ],
  ])('expects %s', (_, text, problem) => {
    expect(problems(text)).toEqual([`${FILE}:${problem}`]);
  });

  it('hints at quoting a template that YAML read as a map', () => {
    expect(problems(rule('      key: {deviceId}'))).toEqual([
      'mappings/example.yaml:6:12: expected a string (quote a value that starts with "{")',
    ]);
  });

  it('rejects keys that are not strings', () => {
    expect(problems(rule('      headers: { 1: a }'))).toEqual([
      'mappings/example.yaml:6:18: expected a string key',
    ]);
  });

  it('points inside a filter at the faulty level', () => {
    expect(
      problems(
        yaml(
          'uplink:',
          '  - name: x',
          '    from:',
          '      - devices/dev-{id}/#',
          "      - 'a/#/b'",
          '      - "{topic}/x"',
          '    to: { topic: t }',
        ),
      ),
    ).toEqual([
      'mappings/example.yaml:4:17: a level may not mix text and a capture ("dev-{id}"); give the capture its own level',
      'mappings/example.yaml:5:12: "#" is only allowed as the last level',
      'mappings/example.yaml:6:10: capture name "topic" is taken by a built-in variable',
    ]);
  });

  it('points at the scalar when the source does not spell the value verbatim', () => {
    expect(
      problems(yaml('uplink:', '  - name: x', '    from: "a\\x2F#/b"', '    to: { topic: t }')),
    ).toEqual(['mappings/example.yaml:3:11: "#" is only allowed as the last level']);
  });

  it('points inside a template at an unknown variable, with a suggestion', () => {
    expect(problems(rule('      key: "dev.{deviceID}"'))).toEqual([
      'mappings/example.yaml:6:17: unknown variable "deviceID" (did you mean "deviceId"?)',
    ]);
    expect(problems(rule('      headers:', '        device: x-{devicId}'))).toEqual([
      'mappings/example.yaml:7:19: unknown variable "devicId" (did you mean "deviceId"?)',
    ]);
  });

  it('rejects a variable that some filters of the rule do not capture', () => {
    expect(
      problems(
        yaml(
          'uplink:',
          '  - name: x',
          '    from: ["a/{id}/{kind}", "b/{id}"]',
          '    to: { topic: t, key: "{id}-{kind}" }',
        ),
      ),
    ).toEqual([
      'mappings/example.yaml:4:32: variable "kind" is not captured by every filter of this rule',
    ]);
  });

  it('checks templates for syntax only when the filters are wrong', () => {
    expect(
      problems(
        yaml('uplink:', '  - name: x', '    from: a/{1}', '    to: { topic: "{y}", key: "{" }'),
      ),
    ).toEqual([
      'mappings/example.yaml:3:13: invalid capture name "1" (letters, digits and "_", not starting with a digit)',
      'mappings/example.yaml:4:31: unclosed "{" (write "{{" for a literal brace)',
    ]);
  });

  it.each([
    [
      'iot telemetry',
      '5:14: a Kafka topic name may only contain letters, digits, ".", "_" and "-"',
    ],
    [
      '"iot/{deviceId}"',
      '5:14: a Kafka topic name may only contain letters, digits, ".", "_" and "-"',
    ],
    ['""', '5:14: a Kafka topic name must not be empty'],
    ['..', '5:14: ".." is not a valid Kafka topic name'],
    ['a'.repeat(250), '5:14: a Kafka topic name is at most 249 characters long'],
  ])('rejects the Kafka topic %s', (topic, problem) => {
    expect(problems(rule().replace('iot.telemetry', topic))).toEqual([`${FILE}:${problem}`]);
  });

  it('accepts a templated Kafka topic', () => {
    expect(rules(rule().replace('iot.telemetry', 'iot.{deviceId}'))[0]?.to.topic.constant).toBe(
      undefined,
    );
  });

  it('accepts an empty downlink list', () => {
    expect(problems(yaml('uplink: []', 'downlink: []'))).toEqual([]);
    expect(problems(yaml('downlink:'))).toEqual([]);
  });

  it('reports YAML syntax errors with their positions', () => {
    expect(problems(yaml('uplink:', '  - name: x', '    from: [a, b', '    to: {}'))).toEqual([
      'mappings/example.yaml:4:5: Flow sequence in block collection must be sufficiently indented and end with a ]',
    ]);
    expect(problems(yaml('uplink: []', 'uplink: []'))).toEqual([
      'mappings/example.yaml:2:1: Map keys must be unique',
    ]);
  });

  it('reports every problem of a file at once', () => {
    expect(
      problems(
        yaml(
          'uplink:',
          '  - name: telemetry',
          '    from: devices/{deviceId}/#',
          '    to:',
          '      topic: iot.telemetry',
          '      key: "{deviceid}"',
          '      partiton: 3',
          '  - name: 7',
          '    from: a/#/b',
          '    to: { topic: t, mqttHeaders: [topics] }',
          '    vale: { format: raw }',
        ),
      ),
    ).toEqual([
      'mappings/example.yaml:6:13: unknown variable "deviceid" (did you mean "deviceId"?)',
      'mappings/example.yaml:7:7: unknown field "partiton" (did you mean "partition"?)',
      'mappings/example.yaml:8:11: expected a string',
      'mappings/example.yaml:9:13: "#" is only allowed as the last level',
      'mappings/example.yaml:10:35: unknown mqttHeaders entry "topics" (did you mean "topic"?)',
      'mappings/example.yaml:11:5: unknown field "vale" (did you mean "value"?)',
    ]);
  });
});
