// `driftwood chaos`: a three-node cluster of real processes on loopback, a workload of
// idempotent acks=all producers and a consumer group, and a seeded nemesis that kills
// (kill -9), pauses (SIGSTOP/SIGCONT) and cuts off nodes for a bounded time. Then everything
// is healed and restarted, the workload drains, the nodes stop, and checks.ts judges what
// the workload saw against what every replica holds on disk.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Admin, type TopicDescription } from '../client/admin.js';
import { checkRun, type CheckReport, type PartitionReplicas } from './checks.js';
import { noFaults, runNemesis, type FaultCounts, type NemesisTarget } from './nemesis.js';
import { ChaosCluster, type UnexpectedExit } from './node-cluster.js';
import { readPartitionLog } from './node-log-files.js';
import { prefixBelow } from './replica-log.js';
import { GroupMemberLoad, ProducerLoad } from './workload.js';

export interface ChaosOptions {
  readonly durationS: number;
  readonly seed: number;
  readonly partitions: number;
  /** Records each of the two producers sends per second. */
  readonly recordsPerSec: number;
  readonly progress: (line: string) => void;
}

export interface ChaosResult extends CheckReport {
  passed: boolean;
  seed: number;
  durationS: number;
  elapsedS: number;
  partitions: number;
  faults: FaultCounts;
  faultsTotal: number;
  recordsSent: number;
  sendErrors: Record<string, number>;
  consumerErrors: Record<string, number>;
  commits: number;
  commitFailures: number;
  unexpectedNodeExits: number;
  highWatermarks: number[];
}

const TOPIC = 'chaos';
const GROUP = 'chaos-group';
const NODES = 3;
const PRODUCERS = 2;
const MEMBERS = 2;
const PROGRESS_INTERVAL_MS = 5000;
const STARTUP_MS_MAX = 60_000;
/** After the heal: how long the cluster may take to have every partition's ISR full again. */
const RECOVERY_MS_MAX = 60_000;
/** How long the producers may take to answer what they still hold once they stop sending. */
const PRODUCER_DRAIN_MS_MAX = 35_000;
/** How long the group may take to consume every acknowledged record after the producers stop. */
const CONSUMER_DRAIN_MS_MAX = 30_000;
/** The nemesis asks who leads; a paused node must not stall it for longer than this. */
const ROLES_WAIT_MS = 3000;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function until<T>(what: string, timeoutMs: number, probe: () => Promise<T | undefined>): Promise<T> {
  const deadline = performance.now() + timeoutMs;
  while (performance.now() < deadline) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(200);
  }
  throw new Error(`chaos: timed out after ${timeoutMs} ms waiting for ${what}`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, fallback: T): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<T>((resolve) => { timer = setTimeout(() => { resolve(fallback); }, ms); });
  return Promise.race([promise.catch(() => fallback), late]).finally(() => { clearTimeout(timer); });
}

/** Every partition has a leader, a full ISR and a high watermark equal to its log end. */
function settled(topic: TopicDescription): boolean {
  return topic.partitions.every((p) => p.leader !== null && p.isr.length === NODES && p.highWatermark !== null && p.highWatermark === p.logEndOffset);
}

/**
 * Kills the nodes and removes the data when this process is interrupted or exits, so that a
 * Ctrl-C or a crash of the run leaves nothing behind. Returns the function that disarms it.
 */
function armCleanup(cluster: ChaosCluster, dir: string): () => void {
  const onExit = (): void => {
    cluster.killAllNow();
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    onExit();
    process.exit(signal === 'SIGINT' ? 130 : 143);
  };
  process.once('exit', onExit);
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  return () => {
    process.off('exit', onExit);
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
  };
}

export async function runChaos(options: ChaosOptions): Promise<ChaosResult> {
  assert.ok(options.durationS > 0 && options.partitions > 0 && options.recordsPerSec > 0, 'chaos options are positive');
  const startedMs = performance.now();
  const stamp = (): string => `${((performance.now() - startedMs) / 1000).toFixed(1)} s`;
  const log = (line: string): void => { options.progress(`[${stamp()}] ${line}`); };
  log(`seed ${options.seed} (replay: driftwood chaos --seed ${options.seed} --duration-s ${options.durationS}); ${NODES} nodes on 127.0.0.2..${NODES + 1}, a proxy per link`);
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-chaos-'));
  let cluster: ChaosCluster | null = null;
  let disarm = (): void => undefined;
  try {
    cluster = await ChaosCluster.start(NODES, dir);
    disarm = armCleanup(cluster, dir);
    return await runOn(cluster, options, log, startedMs);
  } finally {
    disarm();
    await cluster?.destroy();
    await rm(dir, { recursive: true, force: true });
  }
}

async function runOn(cluster: ChaosCluster, options: ChaosOptions, log: (line: string) => void, startedMs: number): Promise<ChaosResult> {
  const admin = new Admin({ bootstrap: cluster.bootstrap, apiTimeoutMs: 10_000, requestTimeoutMs: 3000, retryBackoffMs: 50, retryBackoffMsMax: 500 });
  const producers: ProducerLoad[] = [];
  const members: GroupMemberLoad[] = [];
  let progressTimer: NodeJS.Timeout | undefined;
  try {
    const topicId = await createTopic(admin, options.partitions);
    log(`topic ${TOPIC}: ${options.partitions} partitions, RF ${NODES}, min.insync.replicas 2; ${PRODUCERS} idempotent acks=all producers at ${options.recordsPerSec} records/s each, a group of ${MEMBERS}`);
    for (let i = 0; i < PRODUCERS; i += 1) producers.push(new ProducerLoad(i, cluster.bootstrap, TOPIC, options.recordsPerSec));
    for (let i = 0; i < MEMBERS; i += 1) members.push(new GroupMemberLoad(i, cluster.bootstrap, TOPIC, GROUP));
    const faults = noFaults();
    progressTimer = setInterval(() => { log(progressLine(faults, producers, members)); }, PROGRESS_INTERVAL_MS);
    const endMs = performance.now() + options.durationS * 1000;
    await runNemesis({
      seed: options.seed,
      counts: faults,
      target: nemesisTarget(cluster, admin),
      endMs,
      nowMs: () => performance.now(),
      sleep,
      log,
      stopped: () => performance.now() >= endMs,
    });
    log(`nemesis done: ${progressLine(faults, producers, members)}; healing and restarting everything`);
    const end = await finish(cluster, admin, producers, members, log);
    clearInterval(progressTimer);
    log('nodes stopped; reading every replica of every partition from disk');
    const replicas = await readReplicas(cluster, topicId, end.highWatermarks);
    const report = checkRun(replicas, {
      acked: producers.flatMap((p) => p.acked),
      consumed: members.flatMap((m) => m.consumed),
      observations: members.flatMap((m) => m.observations),
    });
    return result(options, startedMs, faults, report, producers, members, cluster.unexpectedExits, end);
  } finally {
    clearInterval(progressTimer);
    await Promise.all(producers.map((p) => p.stop(0).catch(() => undefined)));
    await Promise.all(members.map((m) => m.stop().catch(() => undefined)));
    await admin.close().catch(() => undefined);
  }
}

async function createTopic(admin: Admin, partitions: number): Promise<string> {
  await until('every broker to be alive', STARTUP_MS_MAX, async () => {
    const described = await admin.describeCluster();
    return described.brokers.length === NODES && described.brokers.every((b) => b.state === 'alive') ? true : undefined;
  });
  const created = await admin.createTopic({ name: TOPIC, partitions, replicationFactor: NODES, configs: { 'min.insync.replicas': 2 } });
  await until('every partition to have a full ISR', STARTUP_MS_MAX, async () => (settled(await admin.describeTopic(TOPIC)) ? true : undefined));
  return created.id;
}

function nemesisTarget(cluster: ChaosCluster, admin: Admin): NemesisTarget {
  return {
    ids: cluster.nodes.map((node) => node.id),
    roles: async () => {
      const [described, topic] = await Promise.all([withTimeout(admin.describeCluster(), ROLES_WAIT_MS, null), withTimeout(admin.describeTopic(TOPIC), ROLES_WAIT_MS, null)]);
      return {
        controller: described === null || described.controller === 0 ? null : described.controller,
        leaders: topic === null ? [] : topic.partitions.flatMap((p) => (p.leader === null ? [] : [p.leader])),
      };
    },
    kill: (id) => cluster.kill(id),
    restart: (id) => { cluster.restart(id); },
    pause: (id) => { cluster.pause(id); },
    resume: (id) => { cluster.resume(id); },
    cut: (id) => { cluster.cut(id); },
    heal: (id) => { cluster.heal(id); },
  };
}

interface EndState {
  readonly highWatermarks: ReadonlyMap<number, number>;
  /** Liveness failures of the end phase (the cluster did not recover, the group did not drain). */
  readonly problems: string[];
}

/** Heals and restarts everything, stops the producers, drains the group, stops the nodes. */
async function finish(cluster: ChaosCluster, admin: Admin, producers: readonly ProducerLoad[], members: readonly GroupMemberLoad[], log: (line: string) => void): Promise<EndState> {
  const problems: string[] = [];
  cluster.reviveAll();
  const healedMs = performance.now();
  const fullIsr = async (): Promise<TopicDescription | undefined> => {
    const described = await admin.describeCluster();
    if (described.brokers.length !== NODES || described.brokers.some((b) => b.state !== 'alive')) return undefined;
    const topic = await admin.describeTopic(TOPIC);
    return topic.partitions.every((p) => p.leader !== null && p.isr.length === NODES) ? topic : undefined;
  };
  await until('every broker alive and every partition with a full ISR after the heal', RECOVERY_MS_MAX, fullIsr).then(
    () => { log(`every partition has a full ISR again, ${((performance.now() - healedMs) / 1000).toFixed(1)} s after the heal; stopping the producers`); },
    (error: unknown) => { problems.push(error instanceof Error ? error.message : String(error)); },
  );
  await Promise.all(producers.map((p) => p.stop(PRODUCER_DRAIN_MS_MAX)));
  // The last answer, settled or not: a cluster that did not settle is still checked below what it says.
  const latest: { topic: TopicDescription | null } = { topic: null };
  await until('every partition settled (full ISR, high watermark at the log end)', RECOVERY_MS_MAX, async () => {
    latest.topic = await admin.describeTopic(TOPIC);
    return settled(latest.topic) ? true : undefined;
  }).catch((error: unknown) => { problems.push(error instanceof Error ? error.message : String(error)); });
  const highWatermarks = new Map((latest.topic?.partitions ?? []).map((p): [number, number] => [p.partition, p.highWatermark ?? 0]));
  log(`producers stopped; high watermarks ${[...highWatermarks.values()].join(' ')}; draining the group`);
  const wanted = new Set(producers.flatMap((p) => p.acked.map((r) => `${r.partition}@${r.offset}`)));
  const drained = (): boolean => {
    const seen = new Set(members.flatMap((m) => m.consumed.map((r) => `${r.partition}@${r.offset}`)));
    return [...wanted].every((key) => seen.has(key));
  };
  await until('the group to consume every acknowledged record', CONSUMER_DRAIN_MS_MAX, () => Promise.resolve(drained() ? true : undefined))
    .catch((error: unknown) => { problems.push(error instanceof Error ? error.message : String(error)); });
  await Promise.all(members.map((m) => m.stop()));
  log('group drained and closed; stopping the nodes (SIGTERM)');
  await cluster.stopAll();
  return { highWatermarks, problems };
}

async function readReplicas(cluster: ChaosCluster, topicId: string, highWatermarks: ReadonlyMap<number, number>): Promise<PartitionReplicas[]> {
  const partitions: PartitionReplicas[] = [];
  for (const [partition, highWatermark] of [...highWatermarks].sort((a, b) => a[0] - b[0])) {
    const replicas = await Promise.all(cluster.nodes.map(async (node) => ({ node: node.id, prefix: prefixBelow(await readPartitionLog(node.dataDir, TOPIC, topicId, partition), highWatermark) })));
    partitions.push({ partition, highWatermark, replicas });
  }
  return partitions;
}

function progressLine(faults: FaultCounts, producers: readonly ProducerLoad[], members: readonly GroupMemberLoad[]): string {
  const total = Object.values(faults).reduce((a, b) => a + b, 0);
  const sum = (values: number[]): number => values.reduce((a, b) => a + b, 0);
  return `faults ${total} (kill-one ${faults['kill-one']}, kill-two ${faults['kill-two']}, pause ${faults.pause}, cut ${faults.cut}); `
    + `sent ${sum(producers.map((p) => p.sent))}, acknowledged ${sum(producers.map((p) => p.acked.length))}, send errors ${sum(producers.map((p) => p.failed))}; `
    + `consumed ${sum(members.map((m) => m.consumed.length))}, commits ${sum(members.map((m) => m.commits))}`;
}

function mergeCounts(maps: ReadonlyArray<ReadonlyMap<string, number>>): Record<string, number> {
  const merged: Record<string, number> = {};
  for (const map of maps) for (const [code, count] of map) merged[code] = (merged[code] ?? 0) + count;
  return merged;
}

function result(options: ChaosOptions, startedMs: number, faults: FaultCounts, report: CheckReport, producers: readonly ProducerLoad[], members: readonly GroupMemberLoad[], exits: readonly UnexpectedExit[], end: EndState): ChaosResult {
  const violations = [...report.violations];
  for (const exit of exits) violations.push(`node ${exit.id} exited by itself (code ${String(exit.code)}, signal ${String(exit.signal)}); its last lines: ${exit.stderrTail.slice(-5).join(' | ')}`);
  violations.push(...end.problems);
  const violationCount = report.violationCount + exits.length + end.problems.length;
  return {
    passed: violationCount === 0,
    seed: options.seed,
    durationS: options.durationS,
    elapsedS: Math.round((performance.now() - startedMs) / 100) / 10,
    partitions: options.partitions,
    faults,
    faultsTotal: Object.values(faults).reduce((a, b) => a + b, 0),
    recordsSent: producers.reduce((a, p) => a + p.sent, 0),
    sendErrors: mergeCounts(producers.map((p) => p.errorCodes)),
    consumerErrors: mergeCounts(members.map((m) => m.errorCodes)),
    commits: members.reduce((a, m) => a + m.commits, 0),
    commitFailures: members.reduce((a, m) => a + m.commitFailures, 0),
    unexpectedNodeExits: exits.length,
    highWatermarks: [...end.highWatermarks].sort((a, b) => a[0] - b[0]).map(([, hw]) => hw),
    ...report,
    violations,
    violationCount,
  };
}
