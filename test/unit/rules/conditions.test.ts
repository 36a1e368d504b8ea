import { describe, expect, it } from 'vitest';
import { mappingErrors, publish, recordsOf, routerOf, yaml } from './fixtures.js';

/** A rule `r` on topic `a` with these `where` lines; returns whether a publish matches it. */
function matches(whereLines: string[], overrides: Parameters<typeof publish>[0]): boolean {
  const router = routerOf(
    yaml(
      'uplink:',
      '  - name: r',
      '    from: a',
      '    to: { topic: t }',
      '    where:',
      ...whereLines,
    ),
  );
  return recordsOf(router.route(publish({ topic: 'a', ...overrides }))).length === 1;
}

const json = (value: unknown) => Buffer.from(JSON.stringify(value));

describe('where', () => {
  it.each([
    [['      clientId: sensor-1'], { clientId: 'sensor-1' }, { clientId: 'sensor-2' }],
    [['      clientId: [a, b]'], { clientId: 'b' }, { clientId: 'c' }],
    [['      username: alice'], { username: 'alice' }, { username: undefined }],
    [['      username: null'], { username: undefined }, { username: 'alice' }],
    [['      username: { exists: true }'], { username: 'x' }, { username: undefined }],
    [['      qos: [1, 2]'], { qos: 2 as const }, { qos: 0 as const }],
    [['      retain: true'], { retain: true }, { retain: false }],
    [['      contentType: application/json'], { contentType: 'application/json' }, {}],
    [['      contentType: { exists: false }'], {}, { contentType: 'text/plain' }],
    [
      ['      userProperties: { tier: gold }'],
      {
        userProperties: [
          ['tier', 'silver'],
          ['tier', 'gold'],
        ] as Array<[string, string]>,
      },
      { userProperties: [['tier', 'silver']] as Array<[string, string]> },
    ],
    [
      ['      userProperties: { trace: { exists: true } }'],
      { userProperties: [['trace', '']] as Array<[string, string]> },
      { userProperties: [] },
    ],
    [
      ['      payload: { type: alarm, level: [2, 3] }'],
      { payload: json({ type: 'alarm', level: 3 }) },
      { payload: json({ type: 'alarm', level: '3' }) },
    ],
    [
      ['      payload: { "meta.ok": true, "meta.x": null }'],
      { payload: json({ meta: { ok: true, x: null } }) },
      { payload: json({ meta: { ok: true } }) },
    ],
    [
      ['      payload: { id: { exists: true } }'],
      { payload: json({ id: 0 }) },
      { payload: Buffer.from('not json') },
    ],
    [
      ['      clientId: a', '      qos: 1'],
      { clientId: 'a', qos: 1 as const },
      { clientId: 'a', qos: 0 as const },
    ],
  ])('%j holds for %j and not for %j', (lines, yes, no) => {
    expect(matches(lines, yes)).toBe(true);
    expect(matches(lines, no)).toBe(false);
  });

  it('lets a later rule take what a condition refused', () => {
    const router = routerOf(
      yaml(
        'uplink:',
        '  - { name: gold, from: a, where: { userProperties: { tier: gold } }, to: { topic: g } }',
        '  - { name: all, from: a, to: { topic: t } }',
      ),
    );
    const route = (tier: string) =>
      recordsOf(router.route(publish({ topic: 'a', userProperties: [['tier', tier]] }))).map(
        (r) => r.rule,
      );
    expect(route('gold')).toEqual(['gold', 'all']);
    expect(route('tin')).toEqual(['all']);
  });

  it.each([
    ['      clientid: a', '6:7: unknown field "clientid" (did you mean "clientId"?)'],
    ['      qos: 3', '6:12: expected 0, 1 or 2 or a list of them'],
    ['      qos: { exists: true }', '6:12: expected 0, 1 or 2 or a list of them'],
    ['      retain: [yes]', '6:16: expected true or false'],
    ['      clientId: []', '6:17: expected at least one value'],
    [
      '      userProperties: { v: 2 }',
      '6:28: expected a string, a list of them or { exists: true|false }',
    ],
    ['      payload: { a: { exists: maybe } }', '6:31: expected true or false'],
    ['      payload: { a: { present: true } }', '6:23: unknown field "present"'],
    [
      '      payload: { "a..b": 1 }',
      '6:18: invalid payload field "a..b" (names separated by ".", none empty)',
    ],
    ['      payload: { a: [[1]] }', '6:22: expected a scalar'],
  ])('reports %s', (line, problem) => {
    expect(
      mappingErrors(
        yaml('uplink:', '  - name: r', '    from: a', '    to: { topic: t }', '    where:', line),
      ),
    ).toContain(`maps/m.yaml:${problem}`);
  });
});

describe('final', () => {
  const router = routerOf(
    yaml(
      'uplink:',
      '  - { name: first, from: "#", to: { topic: a } }',
      '  - { name: alarms, from: x/+, where: { payload: { alarm: true } }, final: true, to: { topic: b } }',
      '  - { name: later, from: x/y, to: { topic: c } }',
    ),
  );

  it('stops matching after a final rule that matched, keeping the rules before it', () => {
    const routed = router.route(publish({ topic: 'x/y', payload: json({ alarm: true }) }));
    expect(recordsOf(routed).map((r) => r.rule)).toEqual(['first', 'alarms']);
  });

  it('does not stop when the final rule did not match', () => {
    const routed = router.route(publish({ topic: 'x/y', payload: json({ alarm: false }) }));
    expect(recordsOf(routed).map((r) => r.rule)).toEqual(['first', 'later']);
  });

  it('must be a boolean', () => {
    expect(
      mappingErrors(yaml('uplink:', '  - { name: r, from: a, final: yes, to: { topic: t } }')),
    ).toEqual(['maps/m.yaml:2:32: expected true or false']);
  });
});
