import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  startLocalRegistry,
  type LocalRegistry,
  type StartRegistryOptions,
} from '../../scripts/registry/local-registry.js';

/*
 * A real Apicurio Registry for tests (scripts/registry/local-registry.ts): in memory, on a free
 * port, fetched from Maven Central on first use. Its log is printed if it fails to start.
 */

export interface TestRegistry extends LocalRegistry {
  /** A call to its Confluent-compatible API, as a Java producer or a person would make it. */
  call(
    method: 'GET' | 'POST' | 'PUT',
    path: string,
    body?: unknown,
  ): Promise<{ status: number; body: unknown }>;
}

export async function startSchemaRegistry(
  options: Omit<StartRegistryOptions, 'logFile' | 'detached'> & {
    /** Credentials `call` sends. */
    auth?: { username: string; password: string };
  } = {},
): Promise<TestRegistry> {
  const folder = await mkdtemp(join(tmpdir(), 'schema-registry-'));
  const registry = await startLocalRegistry({ ...options, logFile: join(folder, 'registry.log') });
  const authorization =
    options.auth &&
    `Basic ${Buffer.from(`${options.auth.username}:${options.auth.password}`).toString('base64')}`;
  return {
    ...registry,
    async call(method, path, body) {
      const response = await fetch(`${registry.url}${path}`, {
        method,
        headers: {
          'content-type': 'application/vnd.schemaregistry.v1+json',
          ...(authorization && { authorization }),
        },
        ...(body !== undefined && { body: JSON.stringify(body) }),
      });
      const text = await response.text();
      return { status: response.status, body: text === '' ? null : (JSON.parse(text) as unknown) };
    },
    async stop() {
      await registry.stop();
      await rm(folder, { recursive: true, force: true });
    },
  };
}
