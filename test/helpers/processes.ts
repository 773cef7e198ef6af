// Real processes for integration tests: free loopback ports, the built `driftwood` binary,
// and cleanup that kills every process a test started, whatever happens.
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { Client } from 'undici';
import { freePort } from '../../src/node-free-port.js';

export const BIN = join(import.meta.dirname, '..', '..', 'dist', 'bin', 'driftwood.js');

export function requireBuild(): void {
  if (!existsSync(BIN)) throw new Error(`${BIN} is missing: run 'make build' first (make test does)`);
}

export interface Started {
  readonly child: ChildProcess;
  readonly output: string[];
}

/** Starts `driftwood <args>`; its output is kept for failure messages. */
export function startDriftwood(args: string[], processes: Set<ChildProcess>): Started {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  const output: string[] = [];
  child.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  processes.add(child);
  child.once('exit', () => processes.delete(child));
  return { child, output };
}

export function killAll(processes: Set<ChildProcess>): void {
  for (const child of processes) child.kill('SIGKILL');
}

/** A GET or POST over HTTP/2 cleartext, as peers and tools talk to a node. */
export async function h2Json(url: string, method: 'GET' | 'POST' = 'GET', body?: unknown): Promise<{ status: number; json: unknown }> {
  const client = new Client(new URL(url).origin, { allowH2: true, useH2c: true } as Client.Options);
  try {
    const response = await client.request({
      method,
      path: new URL(url).pathname,
      headers: { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const text = await response.body.text();
    return { status: response.statusCode, json: text.length > 0 ? JSON.parse(text) : null };
  } finally {
    await client.close();
  }
}

/** Polls `probe` until it returns a value or `timeoutMs` passes. */
export async function waitFor<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  while (Date.now() < deadline) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (error) {
      lastError = error;
    }
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError instanceof Error ? `: ${lastError.message}` : ''}`);
}

export interface LocalCluster {
  readonly dir: string;
  readonly ports: number[];
  /** The shared peers list, "1@127.0.0.1:P1,2@...". */
  readonly peers: string;
  readonly nodes: Map<number, Started>;
  /** Starts node `id` as `driftwood <command> --id ID --peers ... --data DIR/n<id> [extra]`. */
  start: (id: number, command: string, extra?: string[]) => void;
}

/**
 * `size` (3) free loopback ports, a temporary data directory, and cleanup that kills every
 * process started through it and removes the directory, whatever the test does.
 */
export async function localCluster(t: { teardown: (fn: () => Promise<void>) => void }, name: string, size = 3): Promise<LocalCluster> {
  requireBuild();
  const processes = new Set<ChildProcess>();
  const dir = await mkdtemp(join(os.tmpdir(), `driftwood-${name}-`));
  t.teardown(async () => {
    killAll(processes);
    await rm(dir, { recursive: true, force: true });
  });
  const ports: number[] = [];
  for (let i = 0; i < size; i += 1) ports.push(await freePort());
  const peers = ports.map((port, i) => `${i + 1}@127.0.0.1:${port}`).join(',');
  const nodes = new Map<number, Started>();
  const start = (id: number, command: string, extra: string[] = []): void => {
    nodes.set(id, startDriftwood([command, '--id', String(id), '--peers', peers, '--data', join(dir, `n${id}`), ...extra], processes));
  };
  return { dir, ports, peers, nodes, start };
}
