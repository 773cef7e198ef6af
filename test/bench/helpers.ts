// Runs the built `driftwood` binary for the benchmark tests and checks the JSON they print.
import { spawn, type ChildProcess } from 'node:child_process';
import { BIN, requireBuild } from '../helpers/processes.js';

export interface Finished {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** `driftwood <args>` to its end; killed (and failed) after `timeoutMs`. */
export function runDriftwood(args: string[], timeoutMs: number, processes?: Set<ChildProcess>, env: NodeJS.ProcessEnv = process.env): Promise<Finished> {
  requireBuild();
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'], env });
    processes?.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`driftwood ${args.join(' ')} did not finish in ${timeoutMs} ms: ${stderr}`));
    }, timeoutMs);
    // 'close', not 'exit': the output may still be arriving when the process has exited.
    child.once('close', (code) => {
      clearTimeout(timer);
      processes?.delete(child);
      resolve({ code, stdout, stderr });
    });
  });
}

export interface Latency { p50: number; p95: number; p99: number; p999: number; max: number }

/** Percentiles present, non-negative and ordered. */
export function latencyOrdered(latency: Latency): boolean {
  const values = [latency.p50, latency.p95, latency.p99, latency.p999, latency.max];
  return values.every((v) => typeof v === 'number' && Number.isFinite(v) && v >= 0) && values.every((v, i) => i === 0 || (values[i - 1] ?? 0) <= v);
}

/** The one JSON object stdout holds (the whole of stdout, one line). */
export function onlyJson(stdout: string): Record<string, unknown> {
  const lines = stdout.trim().split('\n');
  if (lines.length !== 1) throw new Error(`expected one line of JSON on stdout, got ${lines.length}: ${stdout}`);
  return JSON.parse(lines[0] ?? '') as Record<string, unknown>;
}
