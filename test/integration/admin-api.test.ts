import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import type { IDisconnectPacket } from 'mqtt-packet';
import { afterAll, beforeAll, describe, expect, it, onTestFinished } from 'vitest';
import type { ClientDetail, ClientView, SubscriptionRow } from '../../src/admin/client-views.js';
import type { Page } from '../../src/admin/paging.js';
import type { RulesView } from '../../src/admin/rule-views.js';
import { ADMIN_ROUTES } from '../../src/admin/routes.js';
import type { UplinkDryRun } from '../../src/rules/dry-run.js';
import { collect, connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, readRecords, uniqueId } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/*
 * The admin HTTP API (docs/admin-api.md) of a real bridge, with MQTT.js clients and Kafka.
 */

const TOKEN = 'test-token';
const SASL_PASSWORD = 'sasl-password-never-shown';

let running: RunningBridge;
let readings: string;

function rules(extra = ''): string {
  return `uplink:
  - name: readings
    from: sensors/{deviceId}/temp
    to: { topic: ${readings}, key: "{deviceId}" }
${extra}`;
}

beforeAll(async () => {
  readings = await createTopic('admin-readings');
  running = await startBridge(rules(), {
    admin: { token: TOKEN },
    // reloads come from the API only: the test knows which one changed the rules
    mappingsWatch: false,
    // a password the bridge does not use (mechanism none) but holds: it must never be shown
    kafka: {
      sasl: {
        mechanism: 'none',
        username: '',
        password: SASL_PASSWORD,
        passwordFile: '',
        oauthTokenFile: '',
      },
    },
  });
});

afterAll(async () => {
  await running.stop();
});

interface ErrorBody {
  error: { code: string; message: string; issues?: Array<{ at: string }> };
}

interface Answer<T> {
  status: number;
  headers: Headers;
  body: T;
}

/** A request to the admin API of `bridge`, with the token unless `token` says otherwise. */
async function api<T = ErrorBody>(
  path: string,
  init: RequestInit & { token?: string | null; json?: unknown } = {},
  bridge: RunningBridge = running,
): Promise<Answer<T>> {
  const { token = TOKEN, json, ...rest } = init;
  const headers = new Headers(rest.headers);
  if (token !== null) headers.set('authorization', `Bearer ${token}`);
  if (json !== undefined) headers.set('content-type', 'application/json');
  const response = await fetch(`${bridge.httpUrl}${path}`, {
    ...rest,
    headers,
    ...(json !== undefined && { body: JSON.stringify(json) }),
  });
  const text = await response.text();
  return {
    status: response.status,
    headers: response.headers,
    body: (text === '' ? undefined : JSON.parse(text)) as T,
  };
}

const clients = (path: string): Promise<Answer<Page<ClientView>>> => api<Page<ClientView>>(path);
const detailOf = (clientId: string): Promise<Answer<ClientDetail>> =>
  api<ClientDetail>(`/api/clients/${encodeURIComponent(clientId)}`);
const ruleList = async (): Promise<RulesView> => (await api<RulesView>('/api/rules')).body;
const dryRun = (json: unknown): Promise<Answer<UplinkDryRun & { reason?: string }>> =>
  api<UplinkDryRun & { reason?: string }>('/api/mappings/test', { method: 'POST', json });
const publish = (json: unknown): Promise<Answer<unknown>> =>
  api<unknown>('/api/publish', { method: 'POST', json });

const clientIds = (answer: Answer<Page<ClientView>>): string[] =>
  answer.body.items.map((item) => item.clientId);

describe('admin API: access', () => {
  it('refuses requests without the token or with a wrong one: 401 with WWW-Authenticate', async () => {
    for (const token of [null, 'wrong-token']) {
      for (const path of ['/api/clients', '/api/config', '/api/no-such-route']) {
        const answer = await api(path, { token });
        expect(answer.status, `${path} with ${String(token)}`).toBe(401);
        expect(answer.headers.get('www-authenticate')).toMatch(/^Bearer /);
        expect(answer.body.error.code).toBe('UNAUTHORIZED');
      }
    }
    expect((await api('/api/clients')).status).toBe(200);
  });

  it('is off without a token configured: 404 saying how to turn it on', async () => {
    const plain = await startBridge(rules());
    onTestFinished(() => plain.stop());
    for (const token of [null, TOKEN]) {
      const answer = await api('/api/clients', { token }, plain);
      expect(answer.status).toBe(404);
      expect(answer.body.error.code).toBe('NOT_FOUND');
      expect(answer.body.error.message).toContain('admin.token (env BRIDGE_ADMIN_TOKEN)');
      expect(answer.body.error.message).toContain('admin.tokenFile');
    }
    expect((await api('/api/openapi.json', {}, plain)).status).toBe(404);
  });

  it('answers unknown routes 404, wrong methods 405 with Allow, bad requests 400, all JSON', async () => {
    const unknown = await api('/api/nothing');
    expect(unknown.status).toBe(404);
    expect(unknown.body.error).toMatchObject({ code: 'NOT_FOUND' });

    const wrongMethod = await api('/api/clients/someone', { method: 'PUT' });
    expect(wrongMethod.status).toBe(405);
    expect(wrongMethod.headers.get('allow')).toBe('GET, DELETE');
    expect(wrongMethod.body.error.code).toBe('METHOD_NOT_ALLOWED');

    for (const path of [
      '/api/clients?limit=5000',
      '/api/clients?connected=maybe',
      '/api/clients?clientid=x',
      '/api/subscriptions?topic=a/%23',
    ]) {
      const bad = await api(path);
      expect(bad.status, path).toBe(400);
      expect(bad.body.error.code).toBe('BAD_REQUEST');
    }
  });

  it('refuses bodies over 1 MiB (413), bodies that are not JSON (400) and other media (415)', async () => {
    const large = await api('/api/mappings/test', {
      method: 'POST',
      json: { topic: 'a', payload: 'x'.repeat(1024 * 1024) },
    });
    expect(large.status).toBe(413);
    expect(large.body.error.code).toBe('PAYLOAD_TOO_LARGE');

    const notJson = await api('/api/publish', {
      method: 'POST',
      body: '{"topic":',
      headers: { 'content-type': 'application/json' },
    });
    expect(notJson.status).toBe(400);
    expect(notJson.body.error.message).toMatch(/not JSON/);

    const text = await api('/api/publish', {
      method: 'POST',
      body: 'topic=a',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(text.status).toBe(415);
  });

  it('serves an OpenAPI 3.1 document, without the token, listing every route the router serves', async () => {
    const answer = await api<{ openapi: string; paths: Record<string, object> }>(
      '/api/openapi.json',
      { token: null },
    );
    expect(answer.status).toBe(200);
    expect(answer.body.openapi).toBe('3.1.0');
    const documented = Object.entries(answer.body.paths)
      .flatMap(([path, item]) =>
        Object.keys(item)
          .filter((key) => key !== 'parameters')
          .map((method) => `${method.toUpperCase()} ${path}`),
      )
      .sort();
    const served = ADMIN_ROUTES.map((route) => `${route.method} ${route.path}`).sort();
    expect(documented).toEqual(served);
  });
});

describe('admin API: clients', () => {
  it('lists clients, connected and kept, filtered by id, user name, address and state, in pages', async () => {
    const prefix = `list-${uniqueId()}-`;
    for (const [suffix, username] of [
      ['a1', 'alice'],
      ['a2', 'alice'],
      ['b1', 'bob'],
      ['b2', 'bob'],
    ] as const) {
      await connectClient(running.mqttPort, { clientId: `${prefix}${suffix}`, username });
    }
    // a persistent session whose client went away
    const gone = await connectClient(running.mqttPort, {
      clientId: `${prefix}c1`,
      protocolVersion: 5,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    });
    await gone.endAsync();

    const all = await clients(`/api/clients?clientId=${prefix}`);
    expect(all.status).toBe(200);
    expect(all.body.total).toBe(5);
    expect(clientIds(all)).toEqual(['a1', 'a2', 'b1', 'b2', 'c1'].map((s) => `${prefix}${s}`));
    const first = all.body.items[0];
    expect(first).toMatchObject({
      clientId: `${prefix}a1`,
      username: 'alice',
      connected: true,
      protocolVersion: 4,
      cleanStart: true,
      subscriptionCount: 0,
      inflight: 0,
      queued: 0,
    });
    expect(first?.address).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(Date.parse(first?.connectedAt ?? '')).toBeGreaterThan(Date.now() - 60_000);
    const kept = await waitFor(async () => {
      const item = (await clients(`/api/clients?clientId=${prefix}c`)).body.items[0];
      return item?.connected === false && item;
    });
    expect(kept).toMatchObject({ connected: false, address: null, sessionExpiryInterval: 300 });
    expect(Date.parse(kept.sessionExpiresAt ?? '') - Date.parse(kept.disconnectedAt ?? '')).toBe(
      300_000,
    );

    const alice = await clients(`/api/clients?clientId=${prefix}&username=alice`);
    expect(clientIds(alice)).toEqual([`${prefix}a1`, `${prefix}a2`]);
    const online = await clients(
      `/api/clients?clientId=${prefix}&connected=true&address=127.0.0.1`,
    );
    expect(online.body.total).toBe(4);
    const offline = await clients(`/api/clients?clientId=${prefix}&connected=false`);
    expect(clientIds(offline)).toEqual([`${prefix}c1`]);
    expect((await clients(`/api/clients?clientId=${prefix}&address=10.`)).body.total).toBe(0);

    // pages of two, by cursor, then by offset
    const seen: string[] = [];
    let cursor: string | null = null;
    do {
      const query: string = cursor === null ? '' : `&cursor=${cursor}`;
      const page = await clients(`/api/clients?clientId=${prefix}&limit=2${query}`);
      expect(page.body.items.length).toBeLessThanOrEqual(2);
      seen.push(...clientIds(page));
      cursor = page.body.nextCursor;
    } while (cursor !== null && seen.length < 10);
    expect(seen).toEqual(clientIds(all));
    const byOffset = await clients(`/api/clients?clientId=${prefix}&limit=2&offset=3`);
    expect(clientIds(byOffset)).toEqual([`${prefix}b2`, `${prefix}c1`]);
    expect(byOffset.body.nextCursor).toBeNull();
  });

  it('shows one client with its subscriptions, its id URL-decoded; 404 for an unknown one', async () => {
    const clientId = `detail/${uniqueId()}`;
    const client = await connectClient(running.mqttPort, {
      clientId,
      protocolVersion: 5,
      keepalive: 45,
    });
    await client.subscribeAsync('devices/+/status', {
      qos: 1,
      nl: true,
      properties: { subscriptionIdentifier: 9 },
    });
    await client.subscribeAsync('$share/workers/jobs/#', { qos: 2 });

    const answer = await detailOf(clientId);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({
      clientId,
      connected: true,
      protocolVersion: 5,
      keepAlive: 45,
      subscriptionCount: 2,
    });
    expect(answer.body.subscriptions).toEqual([
      {
        filter: 'devices/+/status',
        qos: 1,
        shareGroup: null,
        options: {
          noLocal: true,
          retainAsPublished: false,
          retainHandling: 0,
          subscriptionIdentifier: 9,
        },
      },
      {
        filter: '$share/workers/jobs/#',
        qos: 2,
        shareGroup: 'workers',
        options: {
          noLocal: false,
          retainAsPublished: false,
          retainHandling: 0,
          subscriptionIdentifier: null,
        },
      },
    ]);

    const unknown = await api(`/api/clients/${encodeURIComponent(`nobody-${uniqueId()}`)}`);
    expect(unknown.status).toBe(404);
    expect(unknown.body.error.code).toBe('NOT_FOUND');
  });

  it('DELETE disconnects an MQTT 5 client with 0x98 and keeps its session', async () => {
    const clientId = `kick-${uniqueId()}`;
    const options = {
      clientId,
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const client = await connectClient(running.mqttPort, options);
    await client.subscribeAsync('kick/topic', { qos: 1 });
    const disconnects: IDisconnectPacket[] = [];
    client.on('disconnect', (packet) => disconnects.push(packet));

    const answer = await api(`/api/clients/${clientId}`, { method: 'DELETE' });
    expect(answer.status).toBe(204);
    const packet = await waitFor(() => disconnects[0], { what: 'DISCONNECT' });
    expect(packet.reasonCode).toBe(0x98);
    await waitFor(async () => !(await detailOf(clientId)).body.connected);

    let sessionPresent: boolean | undefined;
    await connectClient(running.mqttPort, options, (next) => {
      next.once('connect', (connack) => {
        sessionPresent = connack.sessionPresent;
      });
    });
    expect(sessionPresent).toBe(true);
    expect((await detailOf(clientId)).body.subscriptionCount).toBe(1);
  });

  it('DELETE ?session=discard also ends the session: the client comes back to none', async () => {
    const clientId = `discard-${uniqueId()}`;
    const options = {
      clientId,
      protocolVersion: 5 as const,
      clean: false,
      properties: { sessionExpiryInterval: 300 },
    };
    const client = await connectClient(running.mqttPort, options);
    await client.subscribeAsync('discard/topic', { qos: 1 });
    const reasons: number[] = [];
    client.on('disconnect', (packet) => reasons.push(packet.reasonCode ?? 0));

    expect(
      (await api(`/api/clients/${clientId}?session=discard`, { method: 'DELETE' })).status,
    ).toBe(204);
    await waitFor(() => reasons[0] === 0x98, { what: 'DISCONNECT 0x98' });
    expect((await api(`/api/clients/${clientId}`)).status).toBe(404);
    let sessionPresent: boolean | undefined;
    await connectClient(running.mqttPort, options, (next) => {
      next.once('connect', (connack) => {
        sessionPresent = connack.sessionPresent;
      });
    });
    expect(sessionPresent).toBe(false);
    expect((await detailOf(clientId)).body.subscriptionCount).toBe(0);

    const unknown = await api(`/api/clients/nobody-${uniqueId()}`, { method: 'DELETE' });
    expect(unknown.status).toBe(404);
    expect((await api(`/api/clients/${clientId}?session=drop`, { method: 'DELETE' })).status).toBe(
      400,
    );
  });
});

describe('admin API: subscriptions, rules, mappings, config, publish', () => {
  it('lists subscriptions, filtered by client and by the topic a message would go to', async () => {
    const prefix = `subs-${uniqueId()}-`;
    const one = await connectClient(running.mqttPort, { clientId: `${prefix}1` });
    await one.subscribeAsync(`${prefix}/home/+/temp`, { qos: 1 });
    await one.subscribeAsync(`${prefix}/office/#`, { qos: 0 });
    const two = await connectClient(running.mqttPort, {
      clientId: `${prefix}2`,
      protocolVersion: 5,
    });
    await two.subscribeAsync(`$share/g1/${prefix}/home/#`, { qos: 2 });

    const all = await api<Page<SubscriptionRow>>(`/api/subscriptions?clientId=${prefix}`);
    expect(all.status).toBe(200);
    expect(all.body.items).toEqual([
      { clientId: `${prefix}1`, filter: `${prefix}/home/+/temp`, qos: 1, shareGroup: null },
      { clientId: `${prefix}1`, filter: `${prefix}/office/#`, qos: 0, shareGroup: null },
      { clientId: `${prefix}2`, filter: `$share/g1/${prefix}/home/#`, qos: 2, shareGroup: 'g1' },
    ]);
    const topic = encodeURIComponent(`${prefix}/home/kitchen/temp`);
    const matching = await api<Page<SubscriptionRow>>(
      `/api/subscriptions?clientId=${prefix}&topic=${topic}`,
    );
    expect(matching.body.items.map((row) => row.filter)).toEqual([
      `${prefix}/home/+/temp`,
      `$share/g1/${prefix}/home/#`,
    ]);
    const ofTwo = await api<Page<SubscriptionRow>>(
      `/api/subscriptions?clientId=${prefix}2&limit=1`,
    );
    expect(ofTwo.body).toMatchObject({ total: 1, nextCursor: null });
  });

  it('lists the rules with where they are written and counters that move after a publish', async () => {
    const countOf = async (): Promise<number | undefined> =>
      (await ruleList()).uplink.find((r) => r.name === 'readings')?.counts.produced;
    const answer = await api<RulesView>('/api/rules');
    expect(answer.status).toBe(200);
    const rule = answer.body.uplink.find((r) => r.name === 'readings');
    expect(rule).toMatchObject({
      from: ['sensors/{deviceId}/temp'],
      to: readings,
      line: 2,
      counts: { dead_lettered: 0, refused: 0 },
    });
    expect(rule?.at).toMatch(/test\.yaml:2$/);
    expect(answer.body.downlink).toEqual([]);
    expect(answer.body.unmatched).toMatchObject({ action: 'drop', topic: null });

    const before = (await countOf()) ?? -1;
    const client = await connectClient(running.mqttPort, { clientId: `rules-${uniqueId()}` });
    await client.publishAsync('sensors/r1/temp', '20', { qos: 1 });
    await client.publishAsync('sensors/r2/temp', '21', { qos: 1 });
    await waitFor(async () => (await countOf()) === before + 2, { what: 'two more produced' });
  });

  it('dry-runs a publish through the rules in use (mappings/test)', async () => {
    const mapped = await dryRun({ topic: 'sensors/d9/temp', payload: '21.5' });
    expect(mapped.status).toBe(200);
    expect(mapped.body.outcome).toBe('mapped');
    expect(mapped.body.records).toEqual([
      expect.objectContaining({ rule: 'readings', topic: readings, key: 'd9', value: '21.5' }),
    ]);
    expect(mapped.body.reason).toBeUndefined();

    const binary = await dryRun({
      topic: 'sensors/d9/temp',
      payload: 'AAH/',
      payloadEncoding: 'base64',
    });
    expect(binary.body.records[0]?.value).toEqual({ base64: 'AAH/' });

    const unmatched = await dryRun({ topic: 'elsewhere/x', payload: '1' });
    expect(unmatched.body).toMatchObject({ outcome: 'unmatched', records: [], errors: [] });
    expect(unmatched.body.reason).toMatch(/no rule matches topic "elsewhere\/x"/);

    const bad = await api('/api/mappings/test', { method: 'POST', json: { payload: '1' } });
    expect(bad.status).toBe(400);
    expect(bad.body.error.message).toMatch(/topic: required/);
  });

  it('shows the effective configuration without the admin token or the Kafka SASL password', async () => {
    const answer = await api<{
      admin: { token: string };
      kafka: { sasl: { password: string } };
      mappingsWatch: boolean;
      mappings: string;
    }>('/api/config');
    expect(answer.status).toBe(200);
    const text = JSON.stringify(answer.body);
    expect(text).not.toContain(TOKEN);
    expect(text).not.toContain(SASL_PASSWORD);
    expect(answer.body.admin.token).toBe('[redacted]');
    expect(answer.body.kafka.sasl.password).toBe('[redacted]');
    expect(answer.body.mappingsWatch).toBe(false);
    expect(answer.body.mappings).toBe(running.mappingsFolder);
  });

  it('publishes to MQTT subscribers and, through an uplink rule, to Kafka', async () => {
    const subscriber = await connectClient(running.mqttPort, { clientId: `sub-${uniqueId()}` });
    const received = collect(subscriber);
    await subscriber.subscribeAsync('sensors/+/temp', { qos: 1 });
    const device = `admin-${uniqueId()}`;

    const answer = await publish({
      topic: `sensors/${device}/temp`,
      payload: '42',
      qos: 1,
      userProperties: { a: 'b' },
    });
    expect(answer.status).toBe(200);
    expect(answer.body).toEqual({ outcome: 'stored', delivered: 1 });
    await waitFor(() => received.find((message) => message.topic === `sensors/${device}/temp`));
    expect(received.at(-1)?.payload).toBe('42');
    const [record] = await readRecords(readings, 1, {
      match: (candidate) => candidate.key?.toString() === device,
    });
    expect(record?.value?.toString()).toBe('42');

    const qos0 = await publish({
      topic: `sensors/${device}-0/temp`,
      payload: 'AQI=',
      payloadEncoding: 'base64',
    });
    expect(qos0.body).toEqual({ outcome: 'sent', delivered: 1 });
    await waitFor(() => received.find((message) => message.topic === `sensors/${device}-0/temp`));

    const nowhere = await publish({ topic: `nowhere/${device}`, payload: 'x', qos: 1 });
    expect(nowhere.body).toEqual({ outcome: 'unmatched', delivered: 0 });

    const bad = await publish({ topic: 'a/#' });
    expect(bad.status).toBe(400);
  });

  it('reloads the mappings after the file changed; a broken file is a 422 with file:line:column', async () => {
    const file = join(running.mappingsFolder, 'test.yaml');
    onTestFinished(async () => {
      await writeFile(file, rules());
      await api('/api/mappings/reload', { method: 'POST' });
    });
    await writeFile(
      file,
      rules(`  - name: added
    from: added/{id}
    to: { topic: ${readings} }
`),
    );
    const reloaded = await api<unknown>('/api/mappings/reload', { method: 'POST' });
    expect(reloaded.status).toBe(200);
    expect(reloaded.body).toEqual({ ok: true, ruleCount: 2, uplinkRules: 2, downlinkRules: 0 });
    const names = (await ruleList()).uplink.map((rule) => rule.name);
    expect(names).toEqual(['readings', 'added']);
    expect((await dryRun({ topic: 'added/1', payload: 'x' })).body.outcome).toBe('mapped');

    await writeFile(file, `uplink:\n  - name: broken\n    from: a/{id\n    to: { topic: t }\n`);
    const refused = await api('/api/mappings/reload', { method: 'POST' });
    expect(refused.status).toBe(422);
    expect(refused.body.error.code).toBe('MAPPINGS_INVALID');
    expect(refused.body.error.issues?.length).toBeGreaterThan(0);
    expect(refused.body.error.issues?.[0]?.at).toMatch(/test\.yaml:\d+:\d+$/);
    // the rules before it keep running
    const kept = (await ruleList()).uplink.map((rule) => rule.name);
    expect(kept).toEqual(['readings', 'added']);
  });
});
