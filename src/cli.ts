#!/usr/bin/env node
// first: V8's heap settings, then KafkaJS internals replaced before KafkaJS loads them (see
// the modules)
import './v8-tuning.js';
import './kafka/kafkajs-patches.js';
import { readFileSync } from 'node:fs';
import { Argument, Command, InvalidArgumentError } from 'commander';
import {
  PASSWD_ACTIONS,
  parseIterations,
  passwdCommand,
  type PasswdOptions,
} from './auth/passwd-command.js';
import { DEFAULT_ITERATIONS, MAX_ITERATIONS, MIN_ITERATIONS } from './auth/scram-verifier.js';
import { Bridge } from './bridge.js';
import { loadConfig, type ConfigOverrides } from './config/load.js';
import { BridgeError } from './errors.js';
import { createLogger } from './observability/logger.js';
import { installProcessPolicy } from './process-policy.js';
import { MappingError } from './rules/errors.js';
import { isWorker, runWorkers } from './workers.js';
import {
  collectNameValue,
  parsePartition,
  parseQos,
  testMapping,
  validateMappings,
  type TestOptions,
} from './rules/mappings-command.js';

const { version } = JSON.parse(
  readFileSync(new URL('../package.json', import.meta.url), 'utf8'),
) as { version: string };

interface StartOptions {
  config?: string;
  mappings?: string;
  workers?: number;
}

/**
 * Runs the bridge until SIGTERM/SIGINT; a second signal exits at once. SIGHUP reloads the
 * mapping rules and the users file (the outcome is logged; an invalid version is refused and
 * the old one kept).
 */
async function start(options: StartOptions): Promise<void> {
  const overrides: ConfigOverrides = options.mappings ? { mappings: options.mappings } : {};
  const config = loadConfig({ file: options.config, overrides });
  const log = createLogger(config.log);
  if ((options.workers ?? 1) > 1 && !isWorker()) {
    runWorkers(options.workers ?? 1, config, log);
    return;
  }
  const bridge = await Bridge.start(config, log);
  installProcessPolicy(process, log, {
    count: (kind) => {
      bridge.metrics.unhandledErrors.inc({ kind });
    },
    stopAndExit: () => {
      const force = setTimeout(() => process.exit(1), config.shutdownGraceMs + 5_000);
      force.unref();
      void bridge.stop().finally(() => process.exit(1));
    },
  });
  let signalled = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    // a worker hears a terminal's Ctrl-C twice (itself and from its supervisor): once counts
    if (signalled && isWorker()) return;
    if (signalled) {
      log.warn({ signal }, 'second signal: exiting now');
      process.exit(1);
    }
    signalled = true;
    log.info({ signal }, 'shutting down');
    bridge.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        log.error({ err: error }, 'shutdown failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
  process.on('SIGHUP', () => {
    log.info({ signal: 'SIGHUP' }, 'reloading mappings and the users file');
    void bridge.reloadMappings();
    if (config.auth.file !== '') void bridge.reloadAuth();
  });
}

function parseWorkers(text: string): number {
  const count = Number(text);
  if (!Number.isInteger(count) || count < 1 || count > 64) {
    throw new InvalidArgumentError('expected an integer from 1 to 64');
  }
  return count;
}

/** Known failures print their message alone; anything else keeps its stack. */
function fail(error: unknown): never {
  if (error instanceof MappingError || error instanceof BridgeError) {
    process.stderr.write(`mqtt-kafka-bridge: ${error.message}\n`);
  } else {
    process.stderr.write(
      `mqtt-kafka-bridge: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}\n`,
    );
  }
  process.exit(1);
}

const program = new Command()
  .name('mqtt-kafka-bridge')
  .description('MQTT broker front end whose back end is Kafka.')
  .version(version, '-v, --version');

program
  .command('start')
  .description('start the bridge (configuration: defaults < --config file < BRIDGE_* env < flags)')
  .option('-c, --config <file>', 'configuration file (.json, .yaml or .yml)')
  .option('-m, --mappings <path>', 'mapping file or folder (overrides BRIDGE_MAPPINGS)')
  .option(
    '-w, --workers <n>',
    'run n bridge processes sharing the listeners, each an instance of the fleet (needs sessions.store kafka)',
    parseWorkers,
    1,
  )
  .action((options: StartOptions) => start(options).catch(fail));

program
  .command('passwd')
  .description(
    'read a password (stdin, or typed twice on a terminal) and print its verifier line for the auth file; with add, change or remove: edit that user in the --file, keeping the rest of the file',
  )
  .addArgument(new Argument('[action]', 'edit the users of --file').choices(PASSWD_ACTIONS))
  .argument('[name]', 'user name (with an action)')
  .option('-f, --file <file>', 'users and ACL file to edit (default: BRIDGE_AUTH_FILE)')
  .option(
    '-i, --iterations <n>',
    `PBKDF2 iterations (${MIN_ITERATIONS} to ${MAX_ITERATIONS})`,
    parseIterations,
    DEFAULT_ITERATIONS,
  )
  .action((action: string | undefined, name: string | undefined, options: PasswdOptions) =>
    passwdCommand(action, name, options).catch(fail),
  );

/** The mappings the commands read: --mappings, else BRIDGE_MAPPINGS, else `mappings`. */
const defaultMappings = process.env.BRIDGE_MAPPINGS ?? 'mappings';
const mappings = program.command('mappings').description('check mapping rules without running');

mappings
  .command('validate')
  .description('check mapping files; prints each problem as file:line:column: message, exit 1')
  .argument('[path]', 'mapping file or folder (default: BRIDGE_MAPPINGS, else mappings)')
  .action(async (path: string | undefined) => {
    process.exitCode = await validateMappings(path ?? defaultMappings).catch(fail);
  });

mappings
  .command('test')
  .description(
    'print, as JSON, the Kafka records a publish becomes (with --downlink: the MQTT messages a Kafka record becomes) and the rule of each',
  )
  .option('-t, --topic <topic>', 'MQTT topic of the publish (required without --downlink)')
  .option('-p, --payload <text>', 'payload of the publish (required without --downlink)')
  .option('-m, --mappings <path>', 'mapping file or folder', defaultMappings)
  .option('--client-id <id>', 'client id of the publisher', 'mappings-test')
  .option('--username <name>', 'username of the publisher')
  .option('--qos <n>', 'QoS 0, 1 or 2', parseQos, 0)
  .option('--retain', 'the retain flag')
  .option('--content-type <type>', 'MQTT 5 content type')
  .option('--user-property <name=value>', 'MQTT 5 user property (repeatable)', collectNameValue, [])
  .option('--downlink', 'test the downlink rules with a Kafka record')
  .option('--kafka-topic <topic>', 'Kafka topic of the record (required with --downlink)')
  .option('--key <text>', 'record key (default: none)')
  .option('--value <text>', 'record value (default: none, a tombstone)')
  .option('--value-base64 <base64>', 'record value as base64 (binary values such as Avro)')
  .option('--header <name=value>', 'record header (repeatable)', collectNameValue, [])
  .option('--partition <n>', 'partition of the record', parsePartition, 0)
  .option('--offset <n>', 'offset of the record', '0')
  .action(async (options: TestOptions) => {
    process.exitCode = await testMapping(options).catch(fail);
  });

program.parseAsync().catch(fail);
