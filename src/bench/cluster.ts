// `driftwood bench raw-produce` and `driftwood bench idle`: benchmarks against real driftwood
// processes on loopback, started by the benchmark in a temporary directory and killed after.
//   produce: producers push 100-byte records in batches over HTTP/2 with several requests in
//            flight to the partition leaders, for a fixed time; records/s and MB/s acknowledged.
//   idle:    a topic with many partitions at RF 3 sits idle; CPU used by each node per second,
//            which is what the replica fetch sessions cost when nothing happens.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Client } from 'undici';
import { buildBatch } from '../../storage/record-batch.js';
import { freePort } from '../node-free-port.js';

export interface Node {
  readonly id: number;
  readonly port: number;
  readonly child: ChildProcess;
  readonly client: Client;
  /** The node's Kafka-protocol listener port, when the cluster was started with one. */
  readonly kafkaPort: number | null;
}

export interface LocalCluster {
  readonly nodes: Node[];
  stop(): Promise<void>;
}

export interface ProduceBenchOptions {
  /** host:port of a node of a running cluster to measure instead of starting one. */
  readonly target?: string;
  readonly nodes: number;
  readonly partitions: number;
  readonly replicationFactor: number;
  readonly acks: '0' | '1' | 'all';
  readonly recordBytes: number;
  readonly batchRecords: number;
  readonly requestsInFlight: number;
  readonly seconds: number;
  readonly progress: (line: string) => void;
}

export interface ProduceBenchResult {
  machine: string;
  nodes: number;
  partitions: number;
  replicationFactor: number;
  acks: string;
  recordBytes: number;
  batchRecords: number;
  requestsInFlight: number;
  seconds: number;
  records: number;
  recordsPerSec: number;
  megabytesPerSec: number;
  failedRequests: number;
  latencyMsP50: number;
  latencyMsP99: number;
}

export interface IdleBenchOptions {
  readonly partitions: number;
  readonly seconds: number;
  readonly progress: (line: string) => void;
}

export interface IdleBenchResult {
  machine: string;
  partitions: number;
  replicationFactor: number;
  seconds: number;
  /** From the create request to every partition led, in sync and serving, in seconds. */
  createSeconds: number;
  /** CPU time each node used per second of wall time, in percent of one core. */
  cpuPercentByNode: number[];
  /** Resident memory of each node at the end, in MiB (Linux /proc). */
  rssMiBByNode: number[];
}

/** How long bench idle waits for its topic's partitions to be in sync (10,000 take ~100 s on 2 cores). */
const IDLE_CREATE_MS_MAX = 600_000;

/** The built command: next to this file in dist/, or in dist/ when this file runs from source. */
export const BIN = ((): string => {
  const sibling = join(import.meta.dirname, '..', '..', 'bin', 'driftwood.js');
  return existsSync(sibling) ? sibling : join(import.meta.dirname, '..', '..', 'dist', 'bin', 'driftwood.js');
})();
const STARTUP_MS_MAX = 60_000;

export function machine(): string {
  return `${os.cpus().length} x ${os.cpus()[0]?.model ?? 'cpu'}, ${Math.round(os.totalmem() / 1024 ** 3)} GiB, Node ${process.version}`;
}

async function request(client: Client, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> {
  const response = await client.request({ method, path, idempotent: true, headersTimeout: 30_000, bodyTimeout: 30_000, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }) });
  const text = await response.body.text();
  return { status: response.statusCode, json: text.length > 0 ? JSON.parse(text) : null };
}

async function until<T>(what: string, probe: () => Promise<T | undefined>, waitMsMax = STARTUP_MS_MAX): Promise<T> {
  const deadline = performance.now() + waitMsMax;
  while (performance.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  throw new Error(`benchmark: timed out waiting for ${what}`);
}

/**
 * Node options for the benchmark's nodes, for profiling them: DRIFTWOOD_NODE_ARGS="--cpu-prof
 * --cpu-prof-dir=/tmp/prof" (node refuses --cpu-prof in NODE_OPTIONS). With it, stop() ends
 * the nodes with SIGTERM and waits for them, so that they write their profiles.
 */
function nodeArgs(): string[] {
  return (process.env['DRIFTWOOD_NODE_ARGS'] ?? '').split(/\s+/).filter((arg) => arg.length > 0);
}

/** How long stop() waits for a node it asked to exit (with DRIFTWOOD_NODE_ARGS) before it kills it. */
const EXIT_WAIT_MS = 15_000;

export interface StartClusterOptions {
  /** Every node also listens for Kafka's protocol (--kafka-listen) on a port of its own. */
  readonly kafka?: boolean;
}

/** Starts `size` nodes with fresh data directories; every child is killed by stop(). */
export async function startCluster(size: number, options: StartClusterOptions = {}): Promise<LocalCluster> {
  const execArgs = nodeArgs();
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-bench-'));
  const ports: number[] = [];
  for (let i = 0; i < size; i += 1) ports.push(await freePort());
  const kafkaPorts: Array<number | null> = [];
  for (let i = 0; i < size; i += 1) kafkaPorts.push(options.kafka === true ? await freePort() : null);
  const peers = ports.map((port, i) => `${i + 1}@127.0.0.1:${port}`).join(',');
  const nodes = ports.map((port, i): Node => {
    const id = i + 1;
    const kafkaPort = kafkaPorts[i] ?? null;
    const kafkaArgs = kafkaPort === null ? [] : ['--kafka-listen', `127.0.0.1:${kafkaPort}`];
    const child = spawn(process.execPath, [...execArgs, BIN, 'start', '--id', String(id), '--peers', peers, '--data', join(dir, `n${id}`), '--log-level', 'warn', ...kafkaArgs], { stdio: ['ignore', 'ignore', 'inherit'] });
    return { id, port, child, kafkaPort, client: new Client(`http://127.0.0.1:${port}`, { allowH2: true, useH2c: true, pipelining: 256 } as Client.Options) };
  });
  const stop = async (): Promise<void> => {
    if (execArgs.length > 0) {
      await Promise.all(nodes.map(async (node) => {
        if (node.child.exitCode !== null || node.child.signalCode !== null) return;
        const exited = new Promise((resolve) => node.child.once('exit', resolve));
        node.child.kill('SIGTERM');
        await Promise.race([exited, new Promise((resolve) => setTimeout(resolve, EXIT_WAIT_MS))]);
      }));
    }
    for (const node of nodes) node.child.kill('SIGKILL');
    await Promise.all(nodes.map((node) => node.client.destroy()));
    await rm(dir, { recursive: true, force: true });
  };
  try {
    const first = nodes[0];
    if (first === undefined) throw new Error('no nodes');
    await until('every broker to be alive', async () => {
      const brokers = (await request(first.client, 'GET', '/v1/brokers')).json as Array<{ state: string; kafkaAddress?: string | null }>;
      // A Kafka client is told the addresses the brokers registered: wait for them too.
      const registered = (b: { kafkaAddress?: string | null }): boolean => options.kafka !== true || (b.kafkaAddress ?? null) !== null;
      return brokers.length === size && brokers.every((b) => b.state === 'alive' && registered(b)) ? true : undefined;
    });
  } catch (error) {
    await stop();
    throw error;
  }
  return { nodes, stop };
}

export interface PartitionView { partition: number; leader: number; isr: number[]; replicas: number[]; highWatermark: number | null }

/** Creates a topic and waits until every partition has its full ISR and an open log. */
export async function createTopic(cluster: LocalCluster, name: string, partitions: number, replicationFactor: number, configs: Record<string, unknown> = {}): Promise<PartitionView[]> {
  const first = cluster.nodes[0];
  if (first === undefined) throw new Error('no nodes');
  const created = await request(first.client, 'POST', '/v1/topics', { name, partitions, replicationFactor, configs });
  if (created.status !== 201) throw new Error(`benchmark: creating ${name} failed: ${JSON.stringify(created.json)}`);
  return until(`every partition of ${name} to have a full ISR and an open log`, async () => {
    const view = (await request(first.client, 'GET', `/v1/topics/${name}`)).json as { partitions: PartitionView[] };
    return view.partitions.every((p) => p.isr.length === p.replicas.length && p.highWatermark !== null) ? view.partitions : undefined;
  });
}

/** A topic's partitions as the first node describes them, by partition index. */
export async function topicView(cluster: LocalCluster, topic: string): Promise<PartitionView[]> {
  const first = cluster.nodes[0];
  if (first === undefined) throw new Error('no nodes');
  const view = (await request(first.client, 'GET', `/v1/topics/${topic}`)).json as { partitions: PartitionView[] };
  return [...view.partitions].sort((a, b) => a.partition - b.partition);
}

/** A running cluster reached through one of its nodes; stop() only closes the clients. */
async function existingCluster(target: string): Promise<LocalCluster> {
  const first = new Client(`http://${target}`, { allowH2: true, useH2c: true, pipelining: 256 } as Client.Options);
  const brokers = (await request(first, 'GET', '/v1/brokers')).json as Array<{ id: number; address: string }>;
  await first.close();
  const nodes = brokers.map((broker): Node => ({
    id: broker.id,
    port: Number(broker.address.split(':').at(-1)),
    child: null as unknown as ChildProcess,
    kafkaPort: null,
    client: new Client(`http://${broker.address}`, { allowH2: true, useH2c: true, pipelining: 256 } as Client.Options),
  }));
  return { nodes, stop: async () => { await Promise.all(nodes.map((node) => node.client.close())); } };
}

export async function benchProduce(options: ProduceBenchOptions): Promise<ProduceBenchResult> {
  options.progress(options.target === undefined ? `starting ${options.nodes} node(s)` : `using the cluster at ${options.target}`);
  const cluster = options.target === undefined ? await startCluster(options.nodes) : await existingCluster(options.target);
  try {
    const topic = options.target === undefined ? 'bench' : `bench-${Date.now()}`;
    const partitions = await createTopic(cluster, topic, options.partitions, options.replicationFactor, { 'min.insync.replicas': Math.min(2, options.replicationFactor) });
    const template = buildBatch(Array.from({ length: options.batchRecords }, (_, i) => ({ key: null, value: Buffer.alloc(options.recordBytes, 97 + (i % 26)), timestampMs: Date.now() })));
    const latencies: number[] = [];
    let records = 0;
    let failed = 0;
    let next = 0;
    const startedMs = performance.now();
    const endMs = startedMs + options.seconds * 1000;
    let lastProgressMs = startedMs;
    const producer = async (): Promise<void> => {
      while (performance.now() < endMs) {
        const partition = partitions[next++ % partitions.length];
        const leader = cluster.nodes.find((node) => node.id === partition?.leader);
        if (partition === undefined || leader === undefined) throw new Error('benchmark: a partition has no leader');
        const sentMs = performance.now();
        // The broker stamps offsets into the batch it gets, so each request sends its own copy.
        const response = await leader.client.request({ method: 'POST', path: `/v1/topics/${topic}/partitions/${partition.partition}/records?acks=${options.acks}`, idempotent: true, headers: { 'content-type': 'application/vnd.driftwood.batch' }, body: Buffer.from(template), headersTimeout: 30_000, bodyTimeout: 30_000 });
        await response.body.dump();
        latencies.push(performance.now() - sentMs);
        if (response.statusCode < 300) records += options.batchRecords;
        else failed += 1;
        if (performance.now() - lastProgressMs > 2000) {
          lastProgressMs = performance.now();
          options.progress(`${records} records in ${((lastProgressMs - startedMs) / 1000).toFixed(0)} s`);
        }
      }
    };
    await Promise.all(Array.from({ length: options.requestsInFlight }, producer));
    const seconds = (performance.now() - startedMs) / 1000;
    latencies.sort((a, b) => a - b);
    return {
      machine: machine(),
      nodes: cluster.nodes.length,
      partitions: options.partitions,
      replicationFactor: options.replicationFactor,
      acks: options.acks,
      recordBytes: options.recordBytes,
      batchRecords: options.batchRecords,
      requestsInFlight: options.requestsInFlight,
      seconds: Math.round(seconds * 10) / 10,
      records,
      recordsPerSec: Math.round(records / seconds),
      megabytesPerSec: Math.round((records * options.recordBytes) / seconds / 1e5) / 10,
      failedRequests: failed,
      latencyMsP50: Math.round((latencies[Math.floor(latencies.length * 0.5)] ?? 0) * 10) / 10,
      latencyMsP99: Math.round((latencies[Math.floor(latencies.length * 0.99)] ?? 0) * 10) / 10,
    };
  } finally {
    await cluster.stop();
  }
}

/** utime + stime of a process in ms (Linux /proc; clock ticks are 100 Hz there). */
async function rssMiB(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  const kib = Number(/^VmRSS:\s+(\d+) kB$/m.exec(status)?.[1]);
  assert.ok(Number.isFinite(kib), `no VmRSS for process ${pid}`);
  return Math.round(kib / 1024);
}

async function cpuMs(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

export async function benchIdle(options: IdleBenchOptions): Promise<IdleBenchResult> {
  options.progress('starting 3 nodes');
  const cluster = await startCluster(3);
  try {
    const first = cluster.nodes[0];
    if (first === undefined) throw new Error('no nodes');
    options.progress(`creating a topic with ${options.partitions} partitions at RF 3`);
    const createdMs = performance.now();
    const created = await request(first.client, 'POST', '/v1/topics', { name: 'idle', partitions: options.partitions, replicationFactor: 3, configs: {} });
    if (created.status !== 201) throw new Error(`benchmark: creating the idle topic failed: ${JSON.stringify(created.json)}`);
    let reportedMs = performance.now();
    await until(`${options.partitions} partitions in sync`, async () => {
      const view = (await request(first.client, 'GET', '/v1/topics/idle')).json as { partitions: PartitionView[] };
      const ready = view.partitions.filter((p) => p.isr.length === p.replicas.length && p.highWatermark !== null).length;
      if (performance.now() - reportedMs >= 5000) {
        reportedMs = performance.now();
        options.progress(`${ready} of ${options.partitions} partitions in sync after ${((reportedMs - createdMs) / 1000).toFixed(0)} s`);
      }
      return ready === options.partitions ? true : undefined;
    }, IDLE_CREATE_MS_MAX);
    const createSeconds = Math.round((performance.now() - createdMs) / 100) / 10;
    options.progress(`in sync after ${createSeconds} s; settling 5 s`);
    // Let ISR changes and leader rebalancing settle before measuring.
    await new Promise((resolve) => setTimeout(resolve, 5000));
    const pids = cluster.nodes.map((node) => node.child.pid ?? 0);
    const before = await Promise.all(pids.map(cpuMs));
    const startedMs = performance.now();
    options.progress(`measuring for ${options.seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, options.seconds * 1000));
    const after = await Promise.all(pids.map(cpuMs));
    const wallMs = performance.now() - startedMs;
    return {
      machine: machine(),
      partitions: options.partitions,
      replicationFactor: 3,
      seconds: options.seconds,
      createSeconds,
      cpuPercentByNode: after.map((ms, i) => Math.round(((ms - (before[i] ?? 0)) / wallMs) * 1000) / 10),
      rssMiBByNode: await Promise.all(pids.map(rssMiB)),
    };
  } finally {
    await cluster.stop();
  }
}
