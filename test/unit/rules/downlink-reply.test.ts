import { describe, expect, it } from 'vitest';
import type { DownlinkResult } from '../../../src/rules/downlink-types.js';
import { downlinkOf, kafkaRecord, mappingErrors, yaml } from './fixtures.js';

const FILE = 'maps/m.yaml';

/** A downlink file with one rule reading iot.commands, whose `to` is the given line. */
function rule(to: string): string {
  return yaml('downlink:', '  - name: replies', '    from: iot.commands', to);
}

/** The only result of routing `headers` through the rule with `to`. */
function routed(to: string, headers: Record<string, string> = {}): DownlinkResult {
  const results = downlinkOf(rule(to)).route(kafkaRecord({ headers }));
  expect(results).toHaveLength(1);
  return results[0] as DownlinkResult;
}

const REQUEST_HEADERS = {
  'mqtt-response-topic': 'devices/dev1/responses',
  'mqtt-client-id': 'dev1',
};

describe('downlink reply rules: to.replyFor', () => {
  it('renders the requesting client id next to the message', () => {
    const result = routed("    to: { topic: '{header.reply-to}', replyFor: '{header.asker}' }", {
      'reply-to': 'devices/dev1/responses',
      asker: 'dev1',
    });
    expect(result).toMatchObject({
      kind: 'message',
      rule: 'replies',
      replyFor: { clientId: 'dev1' },
      message: { topic: 'devices/dev1/responses' },
    });
  });

  it('takes any template: the key, a value field, fixed text around them', () => {
    expect(routed("    to: { topic: 'r/{key}', replyFor: 'device-{key}' }")).toMatchObject({
      replyFor: { clientId: 'device-d1' },
    });
    const withValue = downlinkOf(
      yaml(
        'downlink:',
        '  - name: replies',
        '    from: iot.commands',
        "    to: { topic: 'r/x', replyFor: '{value.asker}' }",
        '    value: { format: json }',
      ),
    ).route(kafkaRecord({ value: Buffer.from('{"asker":"dev7"}') }));
    expect(withValue[0]).toMatchObject({ kind: 'message', replyFor: { clientId: 'dev7' } });
  });

  it.each([
    ["    to: { topic: x, replyFor: '{header.}' }", '4:32: a header name must not be empty'],
    [
      "    to: { topic: x, replyFor: '{clientId}' }",
      '4:32: unknown variable "clientId" (available: key, topic, partition, offset, timestamp, header.<name>, value.<field>)',
    ],
    [
      "    to: { topic: x, replyFor: '{header.mqtt-client-id' }",
      '4:32: unclosed "{" (write "{{" for a literal brace)',
    ],
    [
      "    to: { topic: x, replyFor: '' }",
      '4:31: a replyFor template must not be empty (e.g. "{header.mqtt-client-id}")',
    ],
    ['    to: { topic: x, replyFor: [a] }', '4:31: expected a string'],
    [
      '    to: { topic: x, replyFro: a }',
      '4:21: unknown field "replyFro" (did you mean "replyFor"?)',
    ],
  ])('rejects %s', (to, problem) => {
    expect(mappingErrors(rule(to))).toEqual([`${FILE}:${problem}`]);
  });

  it('is implicit, {header.mqtt-client-id}, when the topic reads header mqtt-response-topic', () => {
    for (const topic of ['{header.mqtt-response-topic}', 'replies/{header.mqtt-response-topic}']) {
      const result = routed(`    to: { topic: '${topic}' }`, REQUEST_HEADERS);
      expect(result).toMatchObject({ kind: 'message', replyFor: { clientId: 'dev1' } });
    }
    // an explicit replyFor wins
    const explicit = routed(
      "    to: { topic: '{header.mqtt-response-topic}', replyFor: '{key}' }",
      {
        ...REQUEST_HEADERS,
      },
    );
    expect(explicit).toMatchObject({ replyFor: { clientId: 'd1' } });
  });

  it('is absent from rules whose topic does not read the response topic header', () => {
    const result = routed("    to: { topic: 'devices/{key}/commands' }", REQUEST_HEADERS);
    expect(result.kind).toBe('message');
    expect(result).not.toHaveProperty('replyFor');
    // another header giving the whole topic is the mapping author's choice, not a device's
    expect(routed("    to: { topic: '{header.topic}' }", { topic: 'a/b' })).not.toHaveProperty(
      'replyFor',
    );
  });

  it('maps a reply that names no requesting client, saying why (the broker decides)', () => {
    const to = "    to: { topic: '{header.mqtt-response-topic}' }";
    expect(routed(to, { 'mqtt-response-topic': 'devices/dev1/responses' })).toMatchObject({
      kind: 'message',
      rule: 'replies',
      message: { topic: 'devices/dev1/responses' },
      replyFor: { missing: 'header "mqtt-client-id" is missing' },
    });
    expect(routed(to, { ...REQUEST_HEADERS, 'mqtt-client-id': '' })).toMatchObject({
      kind: 'message',
      replyFor: { missing: 'replyFor "{header.mqtt-client-id}" is empty' },
    });
  });

  it('loads mappings/request-response.yaml as a reply rule', async () => {
    const { readFile } = await import('node:fs/promises');
    const text = await readFile('mappings/request-response.yaml', 'utf8');
    const results = downlinkOf(text).route(
      kafkaRecord({ topic: 'iot.responses', headers: REQUEST_HEADERS }),
    );
    expect(results).toMatchObject([
      {
        kind: 'message',
        replyFor: { clientId: 'dev1' },
        message: { topic: 'devices/dev1/responses' },
      },
    ]);
  });
});
