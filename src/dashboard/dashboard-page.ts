import { createHash } from 'node:crypto';
import type { IncomingMessage, ServerResponse } from 'node:http';

/*
 * The web dashboard (docs/operations.md#dashboard): one self-contained page, its CSS and script
 * inline, served from memory at / and /dashboard. It polls /metrics (no token) and, with the admin
 * token the user types (kept in sessionStorage), GET /api/clients; it computes rates and latency
 * quantiles itself between polls. Nothing is fetched from anywhere else, and the Content Security
 * Policy says so to the browser: only this script and this style run (by their SHA-256), and
 * requests go to this origin only. Every value from the bridge is put in the page as text
 * (textContent): client ids are what devices chose.
 */

/** Paths that answer the page. */
export const DASHBOARD_PATHS: ReadonlySet<string> = new Set(['/', '/dashboard']);

const STYLE = String.raw`
:root { color-scheme: light dark; --fg: #1b1f24; --muted: #5b6470; --bg: #f6f7f9; --card: #fff;
  --line: #d8dde3; --accent: #0b6bcb; --bad: #c62828; --good: #2e7d32; }
@media (prefers-color-scheme: dark) { :root { --fg: #e6e8eb; --muted: #9aa3ad; --bg: #15181c;
  --card: #1e2227; --line: #353b42; --accent: #5aa9f5; --bad: #ef6b6b; --good: #6cc070; } }
* { box-sizing: border-box; }
[hidden] { display: none !important; }
body { margin: 0; font: 14px/1.4 system-ui, sans-serif; color: var(--fg); background: var(--bg); }
header { display: flex; align-items: baseline; gap: 1em; padding: 12px 20px; border-bottom: 1px solid var(--line); }
h1 { font-size: 18px; margin: 0; }
h2 { font-size: 15px; margin: 0 0 8px; }
main { padding: 16px 20px; display: grid; gap: 16px; }
section { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 12px 14px; }
.tiles { display: grid; grid-template-columns: repeat(auto-fill, minmax(190px, 1fr)); gap: 10px; background: none; border: 0; padding: 0; }
.tile { background: var(--card); border: 1px solid var(--line); border-radius: 6px; padding: 10px 12px; }
.tile h2 { font-size: 12px; font-weight: 600; color: var(--muted); text-transform: uppercase; letter-spacing: .03em; }
.value { font-size: 26px; font-variant-numeric: tabular-nums; }
small, .muted { color: var(--muted); }
small { display: block; font-size: 12px; }
table { border-collapse: collapse; width: 100%; font-variant-numeric: tabular-nums; }
th, td { text-align: left; padding: 4px 8px; border-bottom: 1px solid var(--line); white-space: nowrap; }
th { font-size: 12px; color: var(--muted); font-weight: 600; }
td.num, th.num { text-align: right; }
td.id { white-space: pre-wrap; word-break: break-all; }
.bad { color: var(--bad); }
.good { color: var(--good); }
.bar { display: flex; flex-wrap: wrap; gap: 8px; align-items: center; margin-bottom: 8px; }
input { font: inherit; padding: 4px 6px; border: 1px solid var(--line); border-radius: 4px; background: var(--bg); color: var(--fg); }
input[type=search] { min-width: 260px; }
button { font: inherit; padding: 3px 10px; border: 1px solid var(--line); border-radius: 4px; background: var(--card); color: var(--fg); cursor: pointer; }
button:hover { border-color: var(--accent); }
button.danger { color: var(--bad); }
`;

const SCRIPT = String.raw`
'use strict';
(() => {
  const POLL_MS = 2000;
  /** Produce latency quantiles cover the bucket counts added in this window. */
  const LATENCY_WINDOW_MS = 30000;
  const TOKEN_KEY = 'mqtt-kafka-bridge.adminToken';
  const byId = (id) => document.getElementById(id);
  const setText = (id, text) => { byId(id).textContent = text; };

  // Prometheus text format: name{label="value",...} value [timestamp]; # lines are comments.
  const toNumber = (text) => (text === '+Inf' ? Infinity : text === '-Inf' ? -Infinity : Number(text));
  function parseMetrics(text) {
    const samples = [];
    for (const line of text.split('\n')) {
      const match = /^([A-Za-z_:][\w:]*)(?:\{(.*)\})?[ \t]+(\S+)/.exec(line);
      if (match === null) continue;
      const labels = new Map();
      for (const label of (match[2] || '').matchAll(/([A-Za-z_]\w*)="((?:[^"\\]|\\.)*)"/g)) {
        labels.set(label[1], label[2].replace(/\\(.)/g, (_, c) => (c === 'n' ? '\n' : c)));
      }
      samples.push({ name: match[1], labels, value: toNumber(match[3]) });
    }
    return samples;
  }

  const sum = (samples, name) =>
    samples.reduce((total, s) => (s.name === name ? total + s.value : total), 0);

  /** What one poll of /metrics says, reduced to what the page shows. */
  function snapshot(text, t) {
    const samples = parseMetrics(text);
    const rules = new Map();
    const buckets = new Map();
    for (const s of samples) {
      if (s.name === 'bridge_kafka_produce_seconds_bucket') {
        const le = toNumber(s.labels.get('le'));
        buckets.set(le, (buckets.get(le) || 0) + s.value);
        continue;
      }
      const dir = s.name === 'bridge_uplink_rule_records_total' ? 'uplink'
        : s.name === 'bridge_downlink_rule_messages_total' ? 'downlink' : undefined;
      if (dir === undefined) continue;
      const rule = s.labels.get('rule') || '';
      const key = dir + '\u0000' + rule;
      let row = rules.get(key);
      if (row === undefined) rules.set(key, (row = { dir, rule, outcomes: new Map() }));
      const outcome = s.labels.get('outcome') || '';
      row.outcomes.set(outcome, (row.outcomes.get(outcome) || 0) + s.value);
    }
    return {
      t,
      connections: sum(samples, 'bridge_mqtt_connections'),
      received: sum(samples, 'bridge_mqtt_publishes_received_total'),
      sent: sum(samples, 'bridge_mqtt_publishes_sent_total'),
      produced: sum(samples, 'bridge_kafka_records_produced_total'),
      deadLettered: sum(samples, 'bridge_uplink_dead_lettered_total'),
      downlinkInvalid: sum(samples, 'bridge_downlink_records_invalid_total'),
      downlinkUnmatched: sum(samples, 'bridge_downlink_records_unmatched_total'),
      // a bridge without this metric: the tile goes (the unsettled records stay)
      lag: /^# TYPE bridge_downlink_consumer_lag /m.test(text) ? sum(samples, 'bridge_downlink_consumer_lag') : undefined,
      unsettled: sum(samples, 'bridge_downlink_unsettled_records'),
      rules,
      buckets,
    };
  }

  /** Per second between two snapshots; undefined without a previous one or after a reset. */
  function rate(now, before, read) {
    if (before === undefined) return undefined;
    const delta = read(now) - read(before);
    const seconds = (now.t - before.t) / 1000;
    return delta >= 0 && seconds > 0 ? delta / seconds : undefined;
  }

  /** The q-quantile of the produce latency added since 'before', as histogram_quantile does. */
  function quantile(q, now, before) {
    const bounds = [...now.buckets.keys()].sort((a, b) => a - b);
    const counts = bounds.map((le) => now.buckets.get(le) - (before.buckets.get(le) || 0));
    const count = counts[counts.length - 1];
    if (!(count > 0)) return undefined;
    const rank = q * count;
    for (let i = 0; i < bounds.length; i++) {
      if (counts[i] < rank) continue;
      if (bounds[i] === Infinity) return i === 0 ? undefined : { seconds: bounds[i - 1], above: true };
      const lower = i === 0 ? 0 : bounds[i - 1];
      const below = i === 0 ? 0 : counts[i - 1];
      return { seconds: lower + (bounds[i] - lower) * ((rank - below) / (counts[i] - below)) };
    }
    return undefined;
  }

  const formatCount = (n) => (n === undefined || !Number.isFinite(n) ? '—' : Math.round(n).toLocaleString('en'));
  const formatRate = (r) => (r === undefined ? '—' : r < 10 && r > 0 ? r.toFixed(1) : Math.round(r).toLocaleString('en'));
  function formatLatency(q) {
    if (q === undefined) return '—';
    const text = q.seconds < 1 ? (q.seconds * 1000).toFixed(q.seconds < 0.01 ? 2 : 1) + ' ms' : q.seconds.toFixed(2) + ' s';
    return q.above ? '> ' + text : text;
  }

  /** A table cell holding 'text' as text, never as markup. */
  function cell(text, className) {
    const td = document.createElement('td');
    td.textContent = text;
    if (className) td.className = className;
    return td;
  }

  let previous;
  let history = [];

  function renderRules(now) {
    const rows = [...now.rules.values()].sort((a, b) =>
      a.dir === b.dir ? (a.rule < b.rule ? -1 : a.rule > b.rule ? 1 : 0) : a.dir === 'uplink' ? -1 : 1);
    const body = byId('rules-body');
    if (rows.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('No rule counted anything yet.', 'muted');
      td.colSpan = 8;
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...rows.map((row) => {
      const ok = row.dir === 'uplink' ? 'produced' : 'delivered';
      const count = (snap, outcome) => {
        const found = snap.rules.get(row.dir + '\u0000' + row.rule);
        return found === undefined ? 0 : found.outcomes.get(outcome) || 0;
      };
      const errors = (snap) => count(snap, 'dead_lettered') + count(snap, 'refused');
      const errorRate = rate(now, previous, errors);
      const tr = document.createElement('tr');
      tr.append(
        cell(row.rule, 'id'),
        cell(row.dir),
        cell(formatRate(rate(now, previous, (snap) => count(snap, ok))), 'num'),
        cell(formatCount(count(now, ok)), 'num'),
        cell(formatRate(errorRate), errorRate > 0 ? 'num bad' : 'num'),
        cell(formatCount(count(now, 'dead_lettered')), count(now, 'dead_lettered') > 0 ? 'num bad' : 'num'),
        cell(formatCount(count(now, 'refused')), count(now, 'refused') > 0 ? 'num bad' : 'num'),
        cell(row.dir === 'downlink' ? formatCount(count(now, 'without_session')) : '', 'num'),
      );
      return tr;
    }));
  }

  async function loadMetrics() {
    let text;
    try {
      const response = await fetch('/metrics', { cache: 'no-store' });
      if (!response.ok) throw new Error('HTTP ' + response.status);
      text = await response.text();
    } catch (error) {
      setText('status', 'metrics unavailable: ' + error.message);
      byId('status').className = 'bad';
      return;
    }
    const now = snapshot(text, Date.now());
    // a counter that went down: the bridge restarted, rates start again
    if (previous !== undefined && (now.received < previous.received || now.produced < previous.produced)) {
      previous = undefined;
      history = [];
    }
    history = history.filter((snap) => snap.t >= now.t - LATENCY_WINDOW_MS);
    setText('connections', formatCount(now.connections));
    setText('in-rate', formatRate(rate(now, previous, (snap) => snap.received)));
    setText('out-rate', formatRate(rate(now, previous, (snap) => snap.sent)));
    setText('produced-rate', formatRate(rate(now, previous, (snap) => snap.produced)));
    const base = history[0];
    setText('p50', base === undefined ? '—' : formatLatency(quantile(0.5, now, base)));
    setText('p99', base === undefined ? '—' : formatLatency(quantile(0.99, now, base)));
    setText('dead-uplink', formatCount(now.deadLettered));
    setText('downlink-invalid', formatCount(now.downlinkInvalid));
    setText('downlink-unmatched', formatCount(now.downlinkUnmatched));
    byId('lag-tile').hidden = now.lag === undefined;
    setText('lag', formatCount(now.lag));
    setText('unsettled', formatCount(now.unsettled));
    renderRules(now);
    previous = now;
    history.push(now);
    setText('status', 'updated ' + new Date(now.t).toLocaleTimeString());
    byId('status').className = 'muted';
  }

  // The clients table: GET /api/clients with the admin token.
  let token = sessionStorage.getItem(TOKEN_KEY) || '';
  let clientsRequest = 0;
  const authorization = () => (token === '' ? {} : { authorization: 'Bearer ' + token });
  const VERSIONS = { 3: '3.1', 4: '3.1.1', 5: '5' };

  function clientsState(state, message) {
    byId('token-form').hidden = !(state === 'no-token' || state === 'refused');
    byId('clients-panel').hidden = state !== 'ok';
    byId('forget').hidden = token === '' || state === 'off';
    setText('clients-note', message || '');
    byId('clients-note').className = state === 'ok' || state === 'no-token' ? 'muted' : 'bad';
  }

  async function errorMessage(response) {
    try {
      const body = await response.json();
      return body.error.message;
    } catch {
      return 'HTTP ' + response.status;
    }
  }

  async function loadClients() {
    const request = ++clientsRequest;
    const query = new URLSearchParams({ limit: '100' });
    const prefix = byId('search').value;
    if (prefix !== '') query.set('clientId', prefix);
    let response;
    let page;
    try {
      response = await fetch('/api/clients?' + query, { headers: authorization(), cache: 'no-store' });
      if (response.ok) page = await response.json();
    } catch (error) {
      if (request === clientsRequest) clientsState('error', 'The admin API did not answer: ' + error.message);
      return;
    }
    if (request !== clientsRequest) return; // a newer request (search typed) answers instead
    if (page !== undefined) {
      renderClients(page);
      clientsState('ok');
      return;
    }
    const message = await errorMessage(response);
    if (response.status === 404 && /admin API is off/.test(message)) {
      clientsState('off', 'The admin API is off: set admin.token (BRIDGE_ADMIN_TOKEN) on the bridge to see and disconnect clients here.');
    } else if (response.status === 401 && token !== '') {
      token = '';
      sessionStorage.removeItem(TOKEN_KEY);
      clientsState('refused', 'The bridge refused that token: enter the admin token again.');
    } else if (response.status === 401) {
      clientsState('no-token', 'The clients table needs the admin token (admin.token): enter it above.');
    } else {
      clientsState('error', 'Clients unavailable: ' + message);
    }
  }

  let shownClients;
  function renderClients(page) {
    // unchanged: the rows stay (a button under the pointer is not replaced every poll)
    const shown = JSON.stringify(page);
    if (shown === shownClients) return;
    shownClients = shown;
    setText('clients-count', page.items.length === page.total
      ? page.total + (page.total === 1 ? ' client' : ' clients')
      : page.items.length + ' of ' + page.total + ' clients');
    const body = byId('clients-body');
    if (page.items.length === 0) {
      const tr = document.createElement('tr');
      const td = cell('No client.', 'muted');
      td.colSpan = 9;
      tr.append(td);
      body.replaceChildren(tr);
      return;
    }
    body.replaceChildren(...page.items.map((client) => {
      const tr = document.createElement('tr');
      const since = client.connected ? client.connectedAt : client.disconnectedAt;
      tr.append(
        cell(client.clientId, 'id'),
        cell(client.username === null ? '' : client.username),
        cell(client.connected ? 'connected' : 'disconnected', client.connected ? 'good' : 'muted'),
        cell(client.address === null ? '' : client.address),
        cell(VERSIONS[client.protocolVersion] || ''),
        cell(since === null ? '' : new Date(since).toLocaleTimeString()),
        cell(String(client.subscriptionCount), 'num'),
        cell(String(client.queued), 'num'),
      );
      const action = document.createElement('td');
      if (client.connected) {
        const button = document.createElement('button');
        button.type = 'button';
        button.className = 'danger';
        button.textContent = 'Disconnect';
        button.addEventListener('click', () => disconnect(client.clientId, button));
        action.append(button);
      }
      tr.append(action);
      return tr;
    }));
  }

  async function disconnect(clientId, button) {
    button.disabled = true;
    let note;
    try {
      const response = await fetch('/api/clients/' + encodeURIComponent(clientId), {
        method: 'DELETE',
        headers: authorization(),
      });
      note = response.status === 204 ? 'Disconnected ' + clientId + '.'
        : 'Could not disconnect ' + clientId + ': ' + (await errorMessage(response));
    } catch (error) {
      note = 'Could not disconnect ' + clientId + ': ' + error.message;
    }
    setText('action-note', note);
    shownClients = undefined;
    await loadClients();
  }

  byId('token-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const input = byId('token');
    token = input.value.trim();
    input.value = '';
    if (token !== '') sessionStorage.setItem(TOKEN_KEY, token);
    void loadClients();
  });
  byId('forget').addEventListener('click', () => {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    setText('action-note', '');
    void loadClients();
  });
  byId('search').addEventListener('input', () => void loadClients());

  async function poll() {
    await Promise.allSettled([loadMetrics(), loadClients()]);
    setTimeout(poll, POLL_MS);
  }
  void poll();
})();
`;

const HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>MQTT-Kafka bridge</title>
<style>${STYLE}</style>
</head>
<body>
<header><h1>MQTT-Kafka bridge</h1><span id="status" class="muted" role="status">loading…</span></header>
<main>
<section class="tiles" aria-label="Figures">
  <div class="tile"><h2>Connections</h2><span class="value" id="connections">—</span><small>MQTT connections open</small></div>
  <div class="tile"><h2>Messages in /s</h2><span class="value" id="in-rate">—</span><small>PUBLISH packets received</small></div>
  <div class="tile"><h2>Messages out /s</h2><span class="value" id="out-rate">—</span><small>PUBLISH packets written to clients</small></div>
  <div class="tile"><h2>Records to Kafka /s</h2><span class="value" id="produced-rate">—</span><small>acknowledged by Kafka</small></div>
  <div class="tile"><h2>Kafka produce latency</h2><span class="value"><span id="p50">—</span> / <span id="p99">—</span></span><small>p50 / p99, last 30 s</small></div>
  <div class="tile"><h2>Dead letters</h2><span class="value" id="dead-uplink">—</span><small>uplink dead-lettered; downlink invalid <span id="downlink-invalid">—</span>, unmatched <span id="downlink-unmatched">—</span></small></div>
  <div class="tile" id="lag-tile"><h2>Downlink lag</h2><span class="value" id="lag">—</span><small>records behind the partitions' ends</small></div>
  <div class="tile"><h2>Downlink unsettled</h2><span class="value" id="unsettled">—</span><small>records delivered, not yet acknowledged</small></div>
</section>
<section aria-labelledby="rules-title">
  <h2 id="rules-title">Rules</h2>
  <table>
    <thead><tr><th>Rule</th><th>Direction</th><th class="num">OK /s</th><th class="num">OK</th><th class="num">Errors /s</th><th class="num">Dead-lettered</th><th class="num">Refused</th><th class="num">No session</th></tr></thead>
    <tbody id="rules-body"></tbody>
  </table>
</section>
<section aria-labelledby="clients-title">
  <h2 id="clients-title">Clients</h2>
  <form id="token-form" class="bar" hidden>
    <label>Admin token <input id="token" type="password" autocomplete="off" required></label>
    <button type="submit">Use token</button>
  </form>
  <p id="clients-note" class="muted"></p>
  <div id="clients-panel" hidden>
    <div class="bar">
      <input id="search" type="search" placeholder="Client id starts with…" aria-label="Client id starts with">
      <span id="clients-count" class="muted"></span>
      <span id="action-note" role="status"></span>
    </div>
    <table>
      <thead><tr><th>Client id</th><th>User</th><th>State</th><th>Address</th><th>MQTT</th><th>Since</th><th class="num">Subs</th><th class="num">Queued</th><th></th></tr></thead>
      <tbody id="clients-body"></tbody>
    </table>
  </div>
  <button id="forget" type="button" hidden>Forget token</button>
</section>
</main>
<script>${SCRIPT}</script>
</body>
</html>
`;

const hash = (text: string): string =>
  `'sha256-${createHash('sha256').update(text, 'utf8').digest('base64')}'`;

/**
 * Nothing but this page's own script and style runs, and it talks to this origin only: no
 * framing, no forms posted anywhere, no base URL changed.
 */
export const DASHBOARD_CSP = [
  "default-src 'none'",
  `script-src ${hash(SCRIPT)}`,
  `style-src ${hash(STYLE)}`,
  "connect-src 'self'",
  "img-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

const PAGE = Buffer.from(HTML, 'utf8');

/** Answers GET or HEAD of a dashboard path with the page; other methods 405. */
export function serveDashboard(request: IncomingMessage, response: ServerResponse): void {
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    response.writeHead(405, { allow: 'GET, HEAD', 'content-type': 'text/plain' });
    response.end('the dashboard answers GET\n');
    return;
  }
  response.writeHead(200, {
    'content-type': 'text/html; charset=utf-8',
    'content-length': PAGE.length,
    'content-security-policy': DASHBOARD_CSP,
    'x-content-type-options': 'nosniff',
    'x-frame-options': 'DENY',
    'referrer-policy': 'no-referrer',
    'cache-control': 'no-cache',
  });
  response.end(request.method === 'HEAD' ? undefined : PAGE);
}
