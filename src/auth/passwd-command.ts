import { createInterface } from 'node:readline';
import { InvalidArgumentError } from 'commander';
import { BridgeError } from '../errors.js';
import { MAX_ITERATIONS, MIN_ITERATIONS, hashPassword } from './scram-verifier.js';
import { applyUserEdit, hasUser, readUsersFile, writeUsersFile } from './users-file-editor.js';

/** What `passwd ACTION NAME` does to the users of a file. */
export const PASSWD_ACTIONS = ['add', 'change', 'remove'] as const;
export type PasswdAction = (typeof PASSWD_ACTIONS)[number];

export interface PasswdOptions {
  iterations: number;
  /** The users and ACL file an action edits (`--file`, else BRIDGE_AUTH_FILE). */
  file?: string | undefined;
}

/** Parses `--iterations`: an integer in the range RFC 7677 and the bridge accept. */
export function parseIterations(value: string): number {
  const iterations = /^\d+$/.test(value) ? Number(value) : NaN;
  if (!(iterations >= MIN_ITERATIONS && iterations <= MAX_ITERATIONS)) {
    throw new InvalidArgumentError(
      `expected an integer from ${MIN_ITERATIONS} to ${MAX_ITERATIONS}`,
    );
  }
  return iterations;
}

/**
 * `mqtt-kafka-bridge passwd [add|change|remove NAME]`. Without an action: reads a password and
 * prints its SCRAM-SHA-256 verifier line for the users and ACL file. With one: adds the user NAME
 * to the file (created if missing), changes its password, or removes it, keeping the rest of the
 * file (comments, rules). Passwords are typed without echo on a terminal, twice; otherwise the
 * first line of stdin is taken.
 */
export async function passwdCommand(
  action: string | undefined,
  name: string | undefined,
  options: PasswdOptions,
): Promise<void> {
  if (action === undefined) {
    if (options.file !== undefined) {
      throw new BridgeError(
        'CONFIG_INVALID',
        `--file needs an action: ${PASSWD_ACTIONS.join(', ')}`,
      );
    }
    process.stdout.write(`${await newVerifier(options.iterations)}\n`);
    return;
  }
  if (!isAction(action)) {
    throw new BridgeError(
      'CONFIG_INVALID',
      `unknown action "${action}": expected ${PASSWD_ACTIONS.join(', ')}`,
    );
  }
  if (name === undefined || name === '') {
    throw new BridgeError('CONFIG_INVALID', `${action} needs a user name`);
  }
  const path = options.file ?? process.env.BRIDGE_AUTH_FILE;
  if (path === undefined || path === '') {
    throw new BridgeError('CONFIG_INVALID', `${action} needs --file (or BRIDGE_AUTH_FILE)`);
  }
  const file = await readUsersFile(path);
  // checked before asking for a password, and again when the edit is applied
  const exists = hasUser(file, name);
  if (action === 'add' && exists) {
    throw new BridgeError('CONFIG_INVALID', `${path} already has a user "${name}" (use change)`);
  }
  if (action !== 'add' && !exists) {
    throw new BridgeError('CONFIG_INVALID', `${path} has no user "${name}" (use add)`);
  }
  if (action === 'remove') applyUserEdit(file, { action, name });
  else applyUserEdit(file, { action, name, verifier: await newVerifier(options.iterations) });
  const problems = await writeUsersFile(file);
  const done = { add: 'added', change: 'changed the password of', remove: 'removed' }[action];
  process.stderr.write(`${done} user "${name}" in ${path}\n`);
  for (const problem of problems) process.stderr.write(`warning: ${problem}\n`);
}

function isAction(action: string): action is PasswdAction {
  return (PASSWD_ACTIONS as readonly string[]).includes(action);
}

/** Reads a password (terminal: hidden, twice; else the first line of stdin) and hashes it. */
async function newVerifier(iterations: number): Promise<string> {
  const { stdin } = process;
  let password: string;
  if (stdin.isTTY) {
    password = await typeHidden('Password: ');
    if ((await typeHidden('Again: ')) !== password) {
      throw new BridgeError('CONFIG_INVALID', 'the passwords differ');
    }
  } else {
    password = await firstLine(stdin);
  }
  if (password === '') throw new BridgeError('CONFIG_INVALID', 'no password given on stdin');
  return hashPassword(password, { iterations });
}

/** The first line of a stream (without its line end); empty when there is none. */
async function firstLine(input: NodeJS.ReadableStream): Promise<string> {
  const lines = createInterface({ input, crlfDelay: Infinity });
  for await (const line of lines) {
    lines.close();
    return line;
  }
  return '';
}

/** Reads a line from the terminal without showing it; Ctrl-C aborts. */
function typeHidden(prompt: string): Promise<string> {
  const { stdin, stderr } = process;
  stderr.write(prompt);
  stdin.setRawMode(true);
  stdin.setEncoding('utf8');
  stdin.resume();
  return new Promise((resolve, reject) => {
    const typed: string[] = [];
    const stop = (): void => {
      stdin.off('data', onData);
      stdin.setRawMode(false);
      stdin.pause();
      stderr.write('\n');
    };
    const onData = (chunk: string): void => {
      for (const char of chunk) {
        if (char === '\r' || char === '\n' || char === '\u0004') {
          stop();
          resolve(typed.join(''));
          return;
        }
        if (char === '\u0003') {
          stop();
          reject(new BridgeError('CONFIG_INVALID', 'interrupted'));
          return;
        }
        if (char === '\u007f' || char === '\b') typed.pop();
        else typed.push(char);
      }
    };
    stdin.on('data', onData);
  });
}
