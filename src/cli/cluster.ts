// `driftwood cluster`: a local cluster in the foreground, for `make cluster`. It starts N
// `driftwood start` processes on loopback with data under DIR/<id> (kept across restarts),
// prefixes each line of their output with the node, and on Ctrl-C (or SIGTERM) stops them all
// cleanly: SIGTERM, then SIGKILL for any still running after a grace period.
import { spawn, type ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { join } from 'node:path';

export interface ClusterOptions {
  readonly nodes: number;
  readonly dataDir: string;
  readonly host: string;
  readonly basePort: number;
  readonly stopGraceMs: number;
}

export const defaultClusterOptions: ClusterOptions = { nodes: 3, dataDir: 'data', host: '127.0.0.1', basePort: 9091, stopGraceMs: 10_000 };

export async function runCluster(options: ClusterOptions, out: (line: string) => void): Promise<number> {
  const ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
  const peers = ids.map((id) => `${id}@${options.host}:${options.basePort + id - 1}`).join(',');
  out(`starting ${options.nodes} nodes: ${peers} (data under ${options.dataDir}/); Ctrl-C stops them`);
  const children = ids.map((id) => startNode(id, peers, options, out));
  let stopping = false;
  const stop = (): void => {
    if (stopping) return;
    stopping = true;
    out('stopping all nodes');
    for (const child of children) child.kill('SIGTERM');
    setTimeout(() => { for (const child of children) if (child.exitCode === null) child.kill('SIGKILL'); }, options.stopGraceMs).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  const codes = await Promise.all(children.map((child, i) => new Promise<number>((resolve) => {
    child.once('exit', (code, signal) => {
      out(`[node ${i + 1}] exited ${signal ?? String(code)}`);
      // One node failing to start (a port in use, say) takes the others down with it.
      if (!stopping && code !== 0) stop();
      resolve(code ?? 1);
    });
  })));
  return codes.every((code) => code === 0) ? 0 : 1;
}

function startNode(id: number, peers: string, options: ClusterOptions, out: (line: string) => void): ChildProcess {
  const script = process.argv[1] ?? '';
  const child = spawn(process.execPath, [script, 'start', '--id', String(id), '--peers', peers, '--data', join(options.dataDir, String(id)), '--log-format', 'pretty'], { stdio: ['ignore', 'pipe', 'pipe'] });
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (line) => { out(`[node ${id}] ${line}`); });
  }
  return child;
}
