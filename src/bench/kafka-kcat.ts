// The kcat rows of `driftwood bench kafka`: what an unchanged librdkafka client gets from the
// Kafka listener. `kcat -P` sends N lines of B bytes from a file (idempotent, acks=all, its
// other settings librdkafka's defaults) to a topic of its own, then `kcat -C -e` reads them
// back from the beginning. Each is timed from spawn to exit, so connecting and metadata are
// in the figure; the count of records held and of lines read must both be N.
import { spawn } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { createTopic, topicView, type LocalCluster } from './cluster.js';
import { every, round, type RunContext } from './perf-common.js';

export interface KcatSide {
  records: number;
  seconds: number;
  recordsPerSec: number;
  megabytesPerSec: number;
}

export interface KcatResult {
  /** 'skipped' when kcat is not on PATH or was turned off; 'failed' when a run did not finish with every record. */
  outcome: 'measured' | 'skipped' | 'failed';
  /** Why it was skipped or failed. */
  note: string | null;
  produce: KcatSide | null;
  consume: KcatSide | null;
}

export interface KcatRowsOptions {
  readonly cluster: LocalCluster;
  readonly records: number;
  readonly recordBytes: number;
  readonly partitions: number;
  readonly enabled: boolean;
  readonly context: RunContext;
}

const TOPIC = 'bench-kcat';
/** One kcat run (either direction) is killed and failed after this long. */
const KCAT_RUN_MS_MAX = 600_000;
const VERSION_CHECK_MS_MAX = 10_000;
/** The tail of kcat's stderr kept for an error message. */
const STDERR_TAIL_BYTES = 2000;
const NEWLINE = 0x0a;

export async function kcatRows(options: KcatRowsOptions): Promise<KcatResult> {
  if (!options.enabled) return { outcome: 'skipped', note: 'turned off (--without-kcat)', produce: null, consume: null };
  const found = await runKcat(['-V'], () => undefined, VERSION_CHECK_MS_MAX).then(() => true, () => false);
  if (!found) return { outcome: 'skipped', note: 'kcat is not on PATH (scripts/install-test-deps.sh installs it)', produce: null, consume: null };
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-bench-kcat-'));
  let produce: KcatSide | null = null;
  try {
    produce = await kcatProduce(options, join(dir, 'records.txt'));
    const consume = await kcatConsume(options);
    return { outcome: 'measured', note: null, produce, consume };
  } catch (error) {
    const note = error instanceof Error ? error.message : String(error);
    options.context.progress?.(`kcat failed: ${note}`);
    return { outcome: 'failed', note, produce, consume: null };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function bootstrapOf(cluster: LocalCluster): string {
  return cluster.nodes.map((node) => `127.0.0.1:${node.kafkaPort ?? 0}`).join(',');
}

function side(records: number, recordBytes: number, seconds: number): KcatSide {
  return { records, seconds: round(seconds, 3), recordsPerSec: Math.round(records / seconds), megabytesPerSec: round((records * recordBytes) / seconds / 1e6, 1) };
}

async function kcatProduce(options: KcatRowsOptions, file: string): Promise<KcatSide> {
  const { cluster, records, recordBytes, context } = options;
  await createTopic(cluster, TOPIC, options.partitions, 3, { 'min.insync.replicas': 2 });
  await writeFile(file, recordLines(records, recordBytes));
  const held = async (): Promise<number> => (await topicView(cluster, TOPIC)).reduce((n, p) => n + (p.highWatermark ?? 0), 0);
  context.progress?.(`kcat -P: ${records} lines of ${recordBytes} bytes (idempotent, acks=all)`);
  const startedMs = performance.now();
  const stopProgress = every(context.progressIntervalMs ?? 5000, () => {
    held().then((n) => context.progress?.(`kcat -P: ${n} of ${records} records held`), () => undefined);
  });
  try {
    await runKcat(['-P', '-b', bootstrapOf(cluster), '-t', TOPIC, '-X', 'acks=all', '-X', 'enable.idempotence=true', '-l', file], () => undefined, KCAT_RUN_MS_MAX, context.signal);
  } finally {
    stopProgress();
  }
  const seconds = (performance.now() - startedMs) / 1000;
  const count = await held();
  if (count !== records) throw new Error(`kcat -P exited 0 but ${TOPIC} holds ${count} of ${records} records`);
  return side(records, recordBytes, seconds);
}

async function kcatConsume(options: KcatRowsOptions): Promise<KcatSide> {
  const { cluster, records, recordBytes, context } = options;
  let lines = 0;
  context.progress?.(`kcat -C -e: reading ${records} records back`);
  const startedMs = performance.now();
  const stopProgress = every(context.progressIntervalMs ?? 5000, () => context.progress?.(`kcat -C: ${lines} of ${records} records read`));
  try {
    await runKcat(['-C', '-b', bootstrapOf(cluster), '-t', TOPIC, '-o', 'beginning', '-e', '-q'], (chunk) => {
      for (let at = chunk.indexOf(NEWLINE); at !== -1; at = chunk.indexOf(NEWLINE, at + 1)) lines += 1;
    }, KCAT_RUN_MS_MAX, context.signal);
  } finally {
    stopProgress();
  }
  const seconds = (performance.now() - startedMs) / 1000;
  if (lines !== records) throw new Error(`kcat -C -e read ${lines} records, ${records} were produced`);
  return side(records, recordBytes, seconds);
}

/** N lines of B letters each (a-z in turn), one record per line for kcat -l. */
function recordLines(records: number, recordBytes: number): Buffer {
  const lineBytes = recordBytes + 1;
  const lines = Buffer.allocUnsafe(records * lineBytes);
  for (let i = 0; i < records; i += 1) {
    lines.fill(97 + (i % 26), i * lineBytes, (i + 1) * lineBytes - 1);
    lines[(i + 1) * lineBytes - 1] = NEWLINE;
  }
  return lines;
}

/** kcat with these arguments to a zero exit; killed and rejected after `timeoutMs` or on the signal. */
function runKcat(args: string[], onStdout: (chunk: Buffer) => void, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['ignore', 'pipe', 'pipe'] });
    let stderr = '';
    let stopped: string | null = null;
    const stop = (why: string): void => {
      stopped = why;
      child.kill('SIGKILL');
    };
    const timer = setTimeout(() => { stop(`ran over ${timeoutMs} ms`); }, timeoutMs);
    const onAbort = (): void => { stop('interrupted'); };
    signal?.addEventListener('abort', onAbort, { once: true });
    child.stdout.on('data', onStdout);
    child.stderr.on('data', (chunk: Buffer) => { stderr = (stderr + chunk.toString()).slice(-STDERR_TAIL_BYTES); });
    child.once('error', (error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      reject(error);
    });
    // 'close', not 'exit': stdout may still be arriving when the process has exited.
    child.once('close', (code) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      if (code === 0 && stopped === null) resolve();
      else reject(new Error(`kcat ${args[0] ?? ''} ${stopped ?? `exited ${String(code)}`}: ${stderr.trim()}`));
    });
  });
}
