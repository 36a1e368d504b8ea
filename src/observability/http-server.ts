import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { BridgeMetrics } from './metrics.js';
import { DASHBOARD_PATHS, serveDashboard } from '../dashboard/dashboard-page.js';
import { closeServer, listenOn } from '../server-lifecycle.js';

export interface HealthProbe {
  /** Why the bridge cannot take traffic yet (listening for MQTT, Kafka takes records); undefined: ready. */
  notReady(): string | undefined;
}

/** Answers a request for /api or below (the admin API). */
export type ApiHandler = (request: IncomingMessage, response: ServerResponse) => void;

/** The dashboard at /, /health/live, /health/ready, /metrics, and the admin API under /api/ once wired. */
export class HttpServer {
  readonly #server: Server;
  #api: ApiHandler | undefined;

  constructor(metrics: BridgeMetrics, health: HealthProbe) {
    this.#server = createServer((request, response) => {
      const path = (request.url ?? '/').split('?')[0];
      if (path === '/health/live') {
        response.writeHead(200, { 'content-type': 'application/json' });
        response.end('{"status":"live"}');
      } else if (path === '/health/ready') {
        const reason = health.notReady();
        response.writeHead(reason === undefined ? 200 : 503, {
          'content-type': 'application/json',
        });
        response.end(
          reason === undefined
            ? '{"status":"ready"}'
            : JSON.stringify({ status: 'not ready', reason }),
        );
      } else if (path === '/metrics') {
        metrics.registry.metrics().then(
          (text) => {
            response.writeHead(200, { 'content-type': metrics.registry.contentType });
            response.end(text);
          },
          (error: unknown) => {
            response.writeHead(500, { 'content-type': 'text/plain' });
            response.end(String(error));
          },
        );
      } else if (path === '/api' || path?.startsWith('/api/') === true) {
        if (this.#api) this.#api(request, response);
        else {
          // the HTTP server answers probes before the broker exists; the API needs the broker
          response.writeHead(503, { 'content-type': 'application/json', 'retry-after': '1' });
          response.end('{"error":{"code":"UNAVAILABLE","message":"the bridge is starting"}}');
        }
      } else if (DASHBOARD_PATHS.has(path ?? '')) {
        serveDashboard(request, response);
      } else {
        response.writeHead(404, { 'content-type': 'text/plain' });
        response.end(
          'not found: try / (the dashboard), /health/live, /health/ready, /metrics or /api/\n',
        );
      }
    });
  }

  /** /api and below go to `handler` from now on (before: 503, the bridge is starting). */
  serveApi(handler: ApiHandler): void {
    this.#api = handler;
  }

  listen(host: string, port: number): Promise<AddressInfo> {
    return listenOn(this.#server, host, port);
  }

  async close(): Promise<void> {
    this.#server.closeAllConnections();
    await closeServer(this.#server);
  }
}
