/**
 * `npm run registry:start` — starts a local Apicurio Registry (Confluent-compatible API,
 * in-memory storage) in the background on 127.0.0.1.
 *
 *   REGISTRY_PORT   port (default 8081); pid and log live in .kafka/registry-<port>/
 *
 * Prints the URL to use as schemaRegistry.url and exits 0 while the registry keeps running.
 * Stop it with `npm run registry:stop`.
 */
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import {
  APICURIO_VERSION,
  CCOMPAT_PATH,
  errorMessage,
  REPO_ROOT,
  registryPortFromEnv,
  registryStateDir,
  runningRegistryPid,
  startLocalRegistry,
} from './local-registry.js';

async function main(): Promise<void> {
  const port = registryPortFromEnv();
  const stateDir = registryStateDir(port);
  const url = `http://127.0.0.1:${port}${CCOMPAT_PATH}`;
  const running = await runningRegistryPid(stateDir);
  if (running !== undefined) {
    console.log(
      `Apicurio Registry ${APICURIO_VERSION} at ${url} (already running, pid ${running})`,
    );
    return;
  }
  await mkdir(stateDir, { recursive: true });
  const logFile = path.join(stateDir, 'registry.log');
  const registry = await startLocalRegistry({
    port,
    logFile,
    detached: true,
    log: (message) => {
      console.error(message);
    },
  });
  await writeFile(path.join(stateDir, 'registry.pid'), `${registry.pid}\n`);
  const seconds = (registry.startupMs / 1000).toFixed(1);
  console.log(
    `Apicurio Registry ${APICURIO_VERSION} ready: schemaRegistry.url=${registry.url} ` +
      `(pid ${registry.pid}, started in ${seconds} s, log ${path.relative(REPO_ROOT, logFile)}; ` +
      `in memory: stop with npm run registry:stop)`,
  );
}

main().then(
  () => process.exit(0),
  (error: unknown) => {
    console.error(errorMessage(error));
    process.exit(1);
  },
);
