import { createInterface } from 'node:readline';
import { InvalidArgumentError } from 'commander';
import { BridgeError } from '../errors.js';
import { MAX_ITERATIONS, MIN_ITERATIONS, hashPassword } from './scram-verifier.js';

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
 * `mqtt-kafka-bridge passwd`: reads a password from stdin (typed without echo on a terminal,
 * twice; otherwise the first line) and prints its SCRAM-SHA-256 verifier line for the users
 * and ACL file.
 */
export async function passwdCommand(options: { iterations: number }): Promise<void> {
  const { stdin, stdout } = process;
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
  stdout.write(`${await hashPassword(password, { iterations: options.iterations })}\n`);
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
