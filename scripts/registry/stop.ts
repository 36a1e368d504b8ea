/** `npm run registry:stop` — stops the registry `npm run registry:start` started (REGISTRY_PORT). */
import { rm } from 'node:fs/promises';
import path from 'node:path';
import { registryPortFromEnv, registryStateDir, runningRegistryPid } from './local-registry.js';

async function main(): Promise<void> {
  const port = registryPortFromEnv();
  const stateDir = registryStateDir(port);
  const pid = await runningRegistryPid(stateDir);
  if (pid === undefined) {
    console.log(`No local registry running on port ${port}`);
    return;
  }
  process.kill(pid, 'SIGTERM');
  for (let waited = 0; waited < 15_000; waited += 200) {
    if ((await runningRegistryPid(stateDir)) === undefined) break;
    await new Promise((resolve) => setTimeout(resolve, 200));
  }
  if ((await runningRegistryPid(stateDir)) !== undefined) process.kill(pid, 'SIGKILL');
  await rm(path.join(stateDir, 'registry.pid'), { force: true });
  console.log(`Stopped the local registry on port ${port} (pid ${pid})`);
}

main().catch((error: unknown) => {
  console.error(error instanceof Error ? error.message : error);
  process.exit(1);
});
