import { spawn } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { verifyPassword } from '../../src/auth/scram-verifier.js';

/** Runs `mqtt-kafka-bridge passwd ARGS` from source with `input` on stdin (not a terminal). */
function passwd(args: string[], input: string) {
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/cli.ts', 'passwd', ...args], {
    env: { PATH: process.env.PATH ?? '' },
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  child.stdin.end(input);
  return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
    child.on('exit', (code) => {
      resolve({ code, stdout, stderr });
    }),
  );
}

describe('mqtt-kafka-bridge passwd', () => {
  it('prints the verifier of the first line of stdin', async () => {
    const run = await passwd(['--iterations', '5000'], 's3cret pass\nignored\n');
    expect(run.code).toBe(0);
    const line = run.stdout.trim();
    expect(line).toMatch(/^SCRAM-SHA-256\$5000:\S+\$\S+:\S+$/);
    expect(await verifyPassword(line, 's3cret pass')).toBe(true);
    expect(run.stdout + run.stderr).not.toContain('s3cret');
  });

  it('refuses an empty password and a weak iteration count', async () => {
    const empty = await passwd([], '\n');
    expect(empty.code).toBe(1);
    expect(empty.stderr).toContain('no password given on stdin');
    const weak = await passwd(['--iterations', '1000'], 'x\n');
    expect(weak.code).toBe(1);
    expect(weak.stderr).toContain('expected an integer from 4096 to 10000000');
  });
});
