/**
 * Replacing one of KafkaJS's internal modules: what the patches in kafkajs-patches.ts share.
 * A module's exports can be replaced only before the modules that take them load; those keep
 * whatever they were given.
 */
import { createRequire } from 'node:module';

const require = createRequire(import.meta.url);

/** The KafkaJS version whose code the patches reproduce (its last release). */
const PATCHED_VERSION = '2.2.4';

/** Whether the installed KafkaJS is the version the patches copy its code from. */
export function isPatchedKafkajs(): boolean {
  return (require('kafkajs/package.json') as { version: string }).version === PATCHED_VERSION;
}

/**
 * Replaces the exports of KafkaJS module `path` with `replace(original exports)`; false (nothing
 * changed) when one of `users` (modules that take those exports when they load) is loaded already.
 */
export function replaceKafkajsModule(
  path: string,
  users: readonly string[],
  replace: (original: unknown) => unknown,
): boolean {
  if (users.some((user) => require.cache[require.resolve(user)])) return false;
  const resolved = require.resolve(path);
  const original: unknown = require(resolved);
  const cached = require.cache[resolved];
  if (cached === undefined) return false;
  cached.exports = replace(original);
  return true;
}
