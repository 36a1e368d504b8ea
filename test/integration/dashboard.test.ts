import { existsSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it, onTestFailed } from 'vitest';
import { connectClient, startBridge, type RunningBridge } from '../support/bridge.js';
import { createTopic, uniqueId } from '../support/kafka-helpers.js';
import { waitFor } from '../support/wait-for.js';

/*
 * The dashboard (src/dashboard/) in a real Chromium against a real bridge: figures from /metrics,
 * the clients table behind the admin token, search and disconnect, nothing fetched from another
 * origin, client ids shown as text. Chromium is Debian's (`apt-get install chromium`, done by
 * .ci/run); CHROMIUM_PATH names another binary.
 */

const CANDIDATES = ['chromium', 'chromium-browser'];

function findChromium(): string | undefined {
  const configured = process.env.CHROMIUM_PATH;
  if (configured !== undefined && configured !== '') return configured;
  const folders = [...(process.env.PATH ?? '').split(delimiter), '/usr/bin'];
  for (const folder of folders) {
    for (const name of CANDIDATES) {
      const path = join(folder, name);
      if (folder !== '' && existsSync(path)) return path;
    }
  }
  return undefined;
}

const executablePath = findChromium();
if (executablePath === undefined) {
  console.warn(
    'dashboard.test.ts skipped: no Chromium binary (looked for chromium and chromium-browser on PATH and in /usr/bin; apt-get install chromium, or set CHROMIUM_PATH)',
  );
}

const TOKEN = 't';
const TITLE = 'MQTT-Kafka bridge';
const RESULTS = fileURLToPath(new URL('../../test-results/', import.meta.url));

let browser: Browser | undefined;

/** A new page on `url`, its requests and Content Security Policy complaints recorded. */
async function openDashboard(url: string): Promise<{
  page: Page;
  requests: string[];
  problems: string[];
  csp: string | undefined;
}> {
  if (browser === undefined) throw new Error('Chromium is not running');
  const page = await browser.newPage();
  page.setDefaultTimeout(15_000);
  const requests: string[] = [];
  const problems: string[] = [];
  page.on('request', (request) => requests.push(request.url()));
  page.on('pageerror', (error) => problems.push(`page error: ${error.message}`));
  page.on('console', (message) => {
    if (message.text().includes('Content Security Policy')) problems.push(message.text());
  });
  // on failure, what the page showed: test-results/dashboard-<test>.png
  onTestFailed(async ({ task }) => {
    await mkdir(RESULTS, { recursive: true });
    const name = task.name.replace(/[^\w-]+/g, '-').slice(0, 80);
    await page.screenshot({ path: join(RESULTS, `dashboard-${name}.png`), fullPage: true });
  });
  const response = await page.goto(url);
  expect(response?.status()).toBe(200);
  return { page, requests, problems, csp: response?.headers()['content-security-policy'] };
}

/** The element matching `selector` once its whole text matches `text` (Playwright waits). */
async function waitForText(page: Page, selector: string, text: RegExp): Promise<void> {
  await page.locator(selector).filter({ hasText: text }).waitFor();
}

describe.skipIf(executablePath === undefined)('dashboard in Chromium', () => {
  let running: RunningBridge;

  beforeAll(async () => {
    const readings = await createTopic('dashboard-readings');
    running = await startBridge(
      `uplink:
  - name: readings
    from: sensors/{deviceId}/temp
    to: { topic: ${readings}, key: "{deviceId}" }
`,
      { admin: { token: TOKEN } },
    );
    browser = await chromium.launch({ executablePath });
  });

  afterAll(async () => {
    await browser?.close();
    await running.stop();
  });

  it('shows live figures and clients, searches, and disconnects a device', async () => {
    const { page, requests, problems, csp } = await openDashboard(`${running.httpUrl}/`);
    const origin = new URL(running.httpUrl).origin;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("connect-src 'self'");
    expect(csp).toMatch(/script-src 'sha256-[\w+/=]+'/);
    expect(await page.title()).toBe(TITLE);

    // metrics need no token; the clients table does
    await waitForText(page, '#connections', /^0$/);
    await waitForText(page, '#clients-note', /needs the admin token/);
    expect(await page.locator('#lag-tile').isVisible()).toBe(true);

    // a wrong token is refused and asked again; the right one shows the (empty) table
    await page.locator('#token').fill('wrong');
    await page.getByRole('button', { name: 'Use token' }).click();
    await waitForText(page, '#clients-note', /refused that token/);
    await page.locator('#token').fill(TOKEN);
    await page.getByRole('button', { name: 'Use token' }).click();
    await page.locator('#clients-panel').waitFor();
    await waitForText(page, '#clients-count', /^0 clients$/);

    // a device connects: the count and the table follow
    const deviceId = `dash-device-${uniqueId()}`;
    const device = await connectClient(running.mqttPort, {
      protocolVersion: 5,
      clientId: deviceId,
    });
    const disconnects: number[] = [];
    device.on('disconnect', (packet) => disconnects.push(packet.reasonCode ?? 0));
    await waitForText(page, '#connections', /^1$/);
    const rows = page.locator('#clients-body tr');
    const deviceRow = rows.filter({ has: page.getByRole('cell', { name: deviceId, exact: true }) });
    await deviceRow.waitFor();
    expect(await deviceRow.getByRole('cell', { name: 'connected', exact: true }).count()).toBe(1);

    // it publishes: messages in per second, the rule's count, the produce latency
    // (the rate shows for one poll: watched from before the publish, whatever Kafka's ack takes)
    await Promise.all([
      waitForText(page, '#in-rate', /^(?!0$)\d/),
      device.publishAsync('sensors/d1/temp', '21.5', { qos: 1 }),
    ]);
    const ruleRow = page
      .locator('#rules-body tr')
      .filter({ has: page.getByRole('cell', { name: 'readings', exact: true }) });
    await ruleRow.getByRole('cell', { name: '1', exact: true }).waitFor();
    await waitForText(page, '#p50', /\d+(\.\d+)? m?s$/);
    await waitForText(page, '#p99', /\d+(\.\d+)? m?s$/);

    // a client id of markup is shown as text: no element made of it, no handler run
    const markupId = `<img src=x onerror="document.title='owned'">${uniqueId()}`;
    await connectClient(running.mqttPort, { protocolVersion: 5, clientId: markupId });
    await waitForText(page, '#connections', /^2$/);
    const markupRow = rows.filter({ has: page.getByRole('cell', { name: markupId, exact: true }) });
    await markupRow.waitFor();
    expect(await page.locator('img').count()).toBe(0);
    expect(await page.title()).toBe(TITLE);

    // search by client id prefix: the device's row only
    await page.getByRole('searchbox', { name: 'Client id starts with' }).fill('dash-device-');
    await markupRow.waitFor({ state: 'detached' });
    await waitForText(page, '#clients-count', /^1 client$/);
    await deviceRow.waitFor();

    // disconnect: MQTT 5 DISCONNECT 0x98 (administrative action), the row goes (no session kept)
    await deviceRow.getByRole('button', { name: 'Disconnect' }).click();
    await waitFor(() => disconnects.includes(0x98), { what: 'DISCONNECT 0x98 at the device' });
    await deviceRow.waitFor({ state: 'detached' });
    await waitForText(page, '#action-note', new RegExp(`^Disconnected ${deviceId}\\.$`));
    await waitForText(page, '#connections', /^1$/);

    // everything came from the bridge, and the policy refused nothing the page does
    expect(requests.length).toBeGreaterThan(0);
    expect(requests.filter((url) => new URL(url).origin !== origin)).toEqual([]);
    expect(requests.some((url) => url.startsWith(`${origin}/metrics`))).toBe(true);
    expect(requests.some((url) => url.startsWith(`${origin}/api/clients`))).toBe(true);
    expect(problems).toEqual([]);
    await page.close();
  });

  it('says when the admin API is off, and still shows the metrics', async () => {
    const apiOff = await startBridge('uplink: []\n');
    try {
      const { page, problems } = await openDashboard(`${apiOff.httpUrl}/dashboard`);
      await waitForText(page, '#clients-note', /admin API is off/);
      expect(await page.locator('#token-form').isVisible()).toBe(false);
      await waitForText(page, '#connections', /^0$/);
      await waitForText(page, '#status', /^updated /);
      expect(problems).toEqual([]);
      await page.close();
    } finally {
      await apiOff.stop();
    }
  });
});
