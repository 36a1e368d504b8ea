import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MappingError } from '../../../src/rules/errors.js';
import { compileMappings, loadMappings } from '../../../src/rules/load.js';
import { kafkaRecord, publish, recordsOf, yaml } from './fixtures.js';

function rule(name: string, from: string, topic: string): string {
  return `  - { name: ${name}, from: "${from}", to: { topic: ${topic} } }`;
}

/** The error thrown by `load`, which must be a MappingError. */
async function failure(load: () => unknown): Promise<MappingError> {
  try {
    await load();
  } catch (error) {
    if (error instanceof MappingError) return error;
    throw error;
  }
  throw new Error('expected a MappingError');
}

describe('compileMappings', () => {
  it('rejects a rule name used twice, pointing at the first', async () => {
    const error = await failure(() =>
      compileMappings([
        { file: 'mappings/a.yaml', text: yaml('uplink:', rule('telemetry', 'a/#', 't')) },
        { file: 'mappings/b.yaml', text: yaml('uplink:', '', rule('telemetry', 'b/#', 't')) },
      ]),
    );
    expect(error.message).toBe(
      'mappings/b.yaml:3:13: duplicate rule name "telemetry" (first defined at mappings/a.yaml:2:13)',
    );
  });

  it('reports the problems of every file, by file then position', async () => {
    const error = await failure(() =>
      compileMappings([
        {
          file: 'b.yaml',
          text: yaml(
            'uplink:',
            rule('x', 'a', 't'),
            '  - { name: y, from: a, to: { topic: t, ky: k } }',
            '  - { name: z, from: "#/a", to: { topic: t } }',
          ),
        },
        { file: 'a.yaml', text: yaml('uplink:', '  - name: "x') },
        { file: 'c.yaml', text: yaml('uplink:', rule('ok', 'a', 't'), rule('x', 'b', 't')) },
      ]),
    );
    expect(error.issues.map((issue) => [issue.file, issue.line])).toEqual([
      ['b.yaml', 3],
      ['b.yaml', 4],
      ['a.yaml', 3],
      ['c.yaml', 3],
    ]);
    expect(error.message.split('\n')).toEqual([
      'b.yaml:3:41: unknown field "ky" (did you mean "key"?)',
      'b.yaml:4:23: "#" is only allowed as the last level',
      'a.yaml:3:1: Missing closing "quote',
      'c.yaml:3:13: duplicate rule name "x" (first defined at b.yaml:2:13)',
    ]);
  });

  it('reports a problem inside an aliased node once', async () => {
    const error = await failure(() =>
      compileMappings([
        {
          file: 'm.yaml',
          text: yaml(
            'uplink:',
            '  - { name: a, from: a, to: &to { topic: t, partiton: 1 } }',
            '  - { name: b, from: b, to: *to }',
          ),
        },
      ]),
    );
    expect(error.message).toBe('m.yaml:2:45: unknown field "partiton" (did you mean "partition"?)');
  });

  it('never returns a router for a file with a bad rule among good ones', async () => {
    const error = await failure(() =>
      compileMappings([
        {
          file: 'm.yaml',
          text: yaml('uplink:', rule('good', 'a', 't'), rule('bad', 'a/#/b', 't')),
        },
      ]),
    );
    expect(error.issues).toEqual([
      { file: 'm.yaml', line: 3, column: 27, message: '"#" is only allowed as the last level' },
    ]);
  });
});

describe('loadMappings', () => {
  let folder: string;

  beforeEach(async () => {
    folder = await mkdtemp(join(tmpdir(), 'mappings-'));
  });

  afterEach(async () => {
    await rm(folder, { recursive: true, force: true });
  });

  it('loads every *.yaml and *.yml file of a folder, sorted by name', async () => {
    await writeFile(join(folder, 'b.yml'), yaml('uplink:', rule('from-b', '#', 'b')));
    await writeFile(join(folder, 'a.yaml'), yaml('uplink:', rule('from-a', '#', 'a')));
    await writeFile(join(folder, 'c.yaml.bak'), 'not: [yaml');
    await writeFile(join(folder, 'README.md'), '# not a mapping');
    await mkdir(join(folder, 'sub.yaml'));
    await writeFile(join(folder, 'sub.yaml', 'ignored.yaml'), 'not: [yaml');

    const router = (await loadMappings(folder)).uplink;
    expect(router.ruleCount).toBe(2);
    expect(recordsOf(router.route(publish({ topic: 'x' }))).map((r) => r.rule)).toEqual([
      'from-a',
      'from-b',
    ]);
  });

  it('loads a single file', async () => {
    const file = join(folder, 'only.yml');
    await writeFile(file, yaml('uplink:', rule('only', 'a/+', 't')));
    expect((await loadMappings(file)).uplink.ruleCount).toBe(1);
  });

  it('names files by the path it was given', async () => {
    await writeFile(join(folder, 'bad.yaml'), yaml('uplink:', rule('x', 'a', 'bad topic')));
    const error = await failure(() => loadMappings(folder));
    expect(error.message).toBe(
      `${join(folder, 'bad.yaml')}:2:40: a Kafka topic name may only contain letters, digits, ".", "_" and "-"`,
    );
  });

  it('rejects a missing path', async () => {
    const missing = join(folder, 'nope');
    const error = await failure(() => loadMappings(missing));
    expect(error.message).toBe(`${missing}: cannot load mappings: no such file or folder`);
    expect(error.issues).toEqual([
      {
        file: missing,
        line: 0,
        column: 0,
        message: 'cannot load mappings: no such file or folder',
      },
    ]);
  });

  it('rejects a folder without mapping files', async () => {
    const error = await failure(() => loadMappings(folder));
    expect(error.message).toBe(`${folder}: no mapping files (*.yaml, *.yml) in this folder`);
  });

  it('rejects a file that is not YAML by name', async () => {
    const file = join(folder, 'rules.json');
    await writeFile(file, '{}');
    const error = await failure(() => loadMappings(file));
    expect(error.message).toBe(`${file}: a mapping file must end in .yaml or .yml`);
  });

  it('loads the shipped example and routes a sample publish', async () => {
    const router = (await loadMappings('mappings')).uplink;
    expect(router.ruleCount).toBeGreaterThanOrEqual(2);
    expect(router.kafkaTopics()).toEqual(expect.arrayContaining(['iot.events', 'iot.telemetry']));

    const [telemetry] = recordsOf(router.route(publish({ topic: 'devices/d1/telemetry' })));
    expect(telemetry?.rule).toBe('telemetry');
    expect(telemetry?.record).toMatchObject({
      topic: 'iot.telemetry',
      key: 'd1',
      partition: undefined,
      headers: { source: 'mqtt', device: 'd1', 'mqtt-topic': 'devices/d1/telemetry' },
    });

    const [event] = recordsOf(router.route(publish({ topic: 'devices/d1/events/door-open' })));
    expect(event?.rule).toBe('events');
    expect(event?.record).toMatchObject({
      topic: 'iot.events',
      key: 'd1',
      headers: { 'event-type': 'door-open' },
    });
  });
});

describe('the shipped examples', () => {
  it('fan events out, stop at final rules and encode Avro with the shipped schema', async () => {
    const router = (await loadMappings('mappings')).uplink;
    const event = publish({
      topic: 'machines/m-4/events/overheat',
      payload: Buffer.from('{"severity": "critical", "temp": 97, "extra": 1}'),
    });
    const routed = recordsOf(router.route(event));
    expect(routed.map((r) => [r.rule, r.record.topic])).toEqual([
      ['machine-events', 'iot.machine-events'],
      ['critical-alerts', 'iot.alerts'],
      ['event-audit', 'iot.event-audit'],
    ]);
    expect(routed[1]?.record.value.toString()).toBe('{"severity":"critical","temp":97}');
    const lab = recordsOf(router.route({ ...event, clientId: 'lab-tester-2' }));
    expect(lab.map((r) => r.rule)).toEqual(['machine-events', 'critical-alerts', 'lab-tests']);

    const [reading] = recordsOf(
      router.route(
        publish({ topic: 'sensors/s-1/reading', payload: Buffer.from('{"id":"s-1","temp":20}') }),
      ),
    );
    expect(reading?.record.value.subarray(0, 5)).toEqual(Buffer.from([0, 0, 0, 0, 1]));
    expect(router.settings.deadLetterTopic).toBe('iot.dead-letter');
  });

  it('deliver commands, request/response replies and retained desired configuration', async () => {
    const { downlink } = await loadMappings('mappings');
    expect(downlink.kafkaTopics()).toEqual(['iot.commands', 'iot.device-config', 'iot.responses']);
    expect(downlink.deadLetterTopic).toBe('iot.dead-letter');

    const [command] = downlink.route(
      kafkaRecord({ headers: { 'command-ttl': '60' }, timestamp: '1700000000000' }),
    );
    expect(command).toMatchObject({
      kind: 'message',
      rule: 'commands',
      message: { topic: 'devices/d1/commands', qos: 1, expiresAt: 1_700_000_060_000 },
    });

    const [reply] = downlink.route(
      kafkaRecord({
        topic: 'iot.responses',
        value: Buffer.from('{"ok":true}'),
        headers: {
          'mqtt-response-topic': Buffer.from('devices/d1/responses'),
          'mqtt-correlation-data': Buffer.from([7, 7]),
          status: '200',
        },
      }),
    );
    expect(reply).toMatchObject({
      kind: 'message',
      rule: 'responses',
      message: {
        topic: 'devices/d1/responses',
        properties: { correlationData: Buffer.from([7, 7]), userProperties: { status: '200' } },
      },
    });

    const [cleared] = downlink.route(kafkaRecord({ topic: 'iot.device-config', value: null }));
    expect(cleared).toMatchObject({
      kind: 'message',
      message: { topic: 'devices/d1/config/desired', retain: true, payload: Buffer.alloc(0) },
    });
    expect(downlink.sources().find((s) => s.rule === 'desired-config')?.groupId).toBe(
      'mqtt-kafka-bridge-config',
    );
  });
});
