import { describe, expect, it } from 'vitest';
import { DEFAULT_MQTT_HEADERS, buildHeaders } from '../../../src/rules/headers.js';
import type { HeaderSpec, MqttHeaderSource } from '../../../src/rules/headers.js';
import { compileTemplate } from '../../../src/rules/templates.js';
import type { Template } from '../../../src/rules/templates.js';
import type { UplinkPublish } from '../../../src/rules/types.js';
import { publish, scopeOf } from './fixtures.js';

function template(source: string): Template {
  const compiled = compileTemplate(source, { everywhere: ['deviceId'], somewhere: new Set() });
  if (!compiled.ok) throw new Error(source);
  return compiled.value;
}

function headers(
  mqttHeaders: readonly MqttHeaderSource[],
  from: UplinkPublish,
  templated: HeaderSpec['headers'] = [],
) {
  return buildHeaders({ mqttHeaders, headers: templated }, scopeOf(from, { deviceId: 'd1' }));
}

describe('buildHeaders', () => {
  it('writes topic, client id and user properties by default', () => {
    const from = publish({ userProperties: [['trace', 't-1']] });
    expect(headers(DEFAULT_MQTT_HEADERS, from)).toEqual({
      'mqtt-topic': 'devices/d1/telemetry',
      'mqtt-client-id': 'client-1',
      trace: 't-1',
    });
  });

  it('writes every MQTT source it is asked for', () => {
    const from = publish({ username: 'alice', qos: 2, retain: true });
    expect(headers(['topic', 'clientId', 'username', 'qos', 'retain'], from)).toEqual({
      'mqtt-topic': 'devices/d1/telemetry',
      'mqtt-client-id': 'client-1',
      'mqtt-username': 'alice',
      'mqtt-qos': '2',
      'mqtt-retain': 'true',
    });
    expect(headers(['qos', 'retain'], publish({ qos: 0 }))).toEqual({
      'mqtt-qos': '0',
      'mqtt-retain': 'false',
    });
  });

  it('sets mqtt-username only when the client gave a username', () => {
    expect(headers(['username'], publish({ username: undefined }))).toEqual({});
    expect(headers(['username'], publish({ username: '' }))).toEqual({ 'mqtt-username': '' });
  });

  it('turns repeated user properties into a list, in order', () => {
    const from = publish({
      userProperties: [
        ['tag', 'a'],
        ['unit', 'C'],
        ['tag', 'b'],
        ['tag', 'c'],
      ],
    });
    const result = headers(['userProperties'], from);
    expect(result).toEqual({ tag: ['a', 'b', 'c'], unit: 'C' });
    expect(Object.keys(result)).toEqual(['tag', 'unit']);
  });

  it('drops user properties named like the headers the bridge writes', () => {
    const from = publish({
      userProperties: [
        ['mqtt-client-id', 'spoofed'],
        ['mqtt-username', 'admin'],
        ['note', 'kept'],
      ],
    });
    expect(headers(['userProperties'], from)).toEqual({ note: 'kept' });
    expect(headers(['clientId', 'userProperties'], from)).toEqual({
      'mqtt-client-id': 'client-1',
      note: 'kept',
    });
  });

  it('keeps user properties with awkward names as plain headers', () => {
    const result = headers(['userProperties'], publish({ userProperties: [['__proto__', 'x']] }));
    expect(Object.keys(result)).toEqual(['__proto__']);
    expect(result['__proto__']).toBe('x');
    // names of Object.prototype's members are headers like any other (not lists with a method)
    const named = headers(
      ['userProperties'],
      publish({
        userProperties: [
          ['toString', 'a'],
          ['constructor', 'b'],
          ['toString', 'c'],
        ],
      }),
    );
    expect(Object.entries(named)).toEqual([
      ['toString', ['a', 'c']],
      ['constructor', 'b'],
    ]);
  });

  it('writes nothing for an empty list', () => {
    expect(headers([], publish({ userProperties: [['a', 'b']] }))).toEqual({});
  });

  it('applies templated headers last, overriding same-named ones', () => {
    const from = publish({ userProperties: [['device', 'from-client']] });
    const result = headers(DEFAULT_MQTT_HEADERS, from, [
      ['device', template('{deviceId}')],
      ['mqtt-topic', template('fixed')],
      ['source', template('mqtt')],
    ]);
    expect(result).toEqual({
      'mqtt-topic': 'fixed',
      'mqtt-client-id': 'client-1',
      device: 'd1',
      source: 'mqtt',
    });
  });
});
