// `driftwood sim ...`: runs the simulator over a range of seeds and reports.
import os from 'node:os';
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import type { RaftBug } from '../raft/index.js';
import type { BrokerNodeBug } from '../src/broker/broker-node.js';
import { defaultClusterSimOptions, defaultFaultKinds, faultKinds, optInFaultKinds, runClusterSim, type ClusterSimResult, type FaultKind } from './cluster-sim.js';
import { defaultRaftSimOptions, runRaftSim, type RaftSimResult } from './raft-sim.js';
import type { SeedWork } from './seed-worker.js';

export interface SimIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
  /** stderr is a terminal: draw a progress bar instead of plain progress lines. */
  progressBar?: boolean;
}

/** Progress of a seed range on stderr: a bar redrawn in place on a terminal, a plain line every few seconds otherwise. */
class Progress {
  private readonly startMs = performance.now();
  private lastMs = 0;
  private drawn = false;

  constructor(private readonly io: SimIO, private readonly total: number) {}

  update(done: number, failing: number): void {
    const nowMs = performance.now();
    const bar = this.io.progressBar === true;
    if (nowMs - this.lastMs < (bar ? PROGRESS_BAR_MS : PROGRESS_LINE_MS) && done < this.total) return;
    this.lastMs = nowMs;
    const elapsedS = (nowMs - this.startMs) / 1000;
    const etaS = done === 0 ? 0 : (elapsedS / done) * (this.total - done);
    const text = `${done}/${this.total} seeds, ${failing} failing, ${Math.round(elapsedS)} s${done < this.total ? `, about ${formatSeconds(etaS)} left` : ''}`;
    if (!bar) {
      if (done < this.total) this.io.stderr(`${text}\n`);
      return;
    }
    const filled = Math.round((done / Math.max(1, this.total)) * PROGRESS_BAR_WIDTH);
    this.io.stderr(`\r[${'#'.repeat(filled)}${'-'.repeat(PROGRESS_BAR_WIDTH - filled)}] ${text}\u001b[K`);
    this.drawn = true;
  }

  /** Leaves the line before anything else is printed. */
  interrupt(): void {
    if (!this.drawn) return;
    this.io.stderr('\r\u001b[K');
    this.drawn = false;
  }

  finish(): void {
    if (this.drawn) this.io.stderr('\n');
    this.drawn = false;
  }
}

const PROGRESS_BAR_MS = 200;
const PROGRESS_LINE_MS = 2000;
const PROGRESS_BAR_WIDTH = 30;

function formatSeconds(seconds: number): string {
  return seconds < 90 ? `${Math.round(seconds)} s` : `${Math.round(seconds / 60)} min`;
}

/** `--duration`: 60s, 2m, 1500ms or a plain number of seconds. */
export function parseDurationMs(text: string): number {
  const match = /^(\d+(?:\.\d+)?)(ms|s|m)?$/.exec(text);
  if (match === null) throw new SimUsageError(`--duration takes 60s, 2m, 1500ms or seconds, got '${text}'`);
  const unitMs = match[2] === 'ms' ? 1 : match[2] === 'm' ? 60_000 : 1000;
  return Math.round(Number(match[1]) * unitMs);
}

/** Each deliberate defect and what it breaks, for `--bug` and `--list-bugs`. */
export const simBugs: Record<RaftBug, string> = {
  'raft-vote-twice': 'grants a second vote in the same term (two leaders in one term)',
  'raft-commit-old-term': "commits a previous term's entry by counting replicas (Raft figure 8)",
  'raft-ack-before-persist': 'sends vote and append responses before the state they promise is durable',
};

/** The cluster simulator's defects (`driftwood sim cluster --bug`). */
export const clusterSimBugs: Record<BrokerNodeBug, string> = {
  'controller-activate-early': "a new controller decides before applying its predecessor's last entries (changes to removed topics)",
  'roles-before-caught-up': 'a (restarted) broker takes partition roles from its image before it has registered and been unfenced (sim seed 252 before the fix)',
  'ack-before-isr': 'a partition leader moves its high watermark (and answers acks=all) without waiting for the ISR',
  'truncate-to-hw': "a replica becoming follower cuts its log to its high watermark instead of using the leader's epochs (before KIP-101)",
  'elect-outside-isr': 'the controller moves leadership to a live replica outside the ISR when a leader is fenced',
  'complete-early': 'the controller completes a reassignment as it starts, taking the new replicas into the ISR before they hold anything (needs --faults ...,reassign)',
  'hw-regress': 'the high watermark is not checkpointed, and a new or restarted leader serves it before it reaches its own epoch (consumers see it go back)',
  'idempotence-off': 'partition leaders write every batch, ignoring producer ids and sequences (a retried idempotent batch lands twice)',
  'grant-unreleased': 'the group coordinator hands a revoked partition to its next owner before the old one said it gave it up',
  'classic-forget-generation': "a new group coordinator restores a classic group without its generation (from 0), so generations repeat after a failover",
};

export class SimUsageError extends Error {
  override readonly name = 'SimUsageError';
}

/** A limit on seeds per command, so a typo cannot start a week-long run. */
const SEEDS_MAX = 1_000_000;

export function parseSeeds(text: string): number[] {
  const match = /^(\d+)(?:\.\.(\d+))?$/.exec(text);
  if (match === null) throw new SimUsageError(`--seeds takes N or A..B, got '${text}'`);
  const first = Number(match[1]);
  const last = match[2] === undefined ? first : Number(match[2]);
  if (!Number.isSafeInteger(first) || !Number.isSafeInteger(last) || last < first) throw new SimUsageError(`--seeds range '${text}' is empty or too large`);
  if (last - first + 1 > SEEDS_MAX) throw new SimUsageError(`--seeds covers more than ${SEEDS_MAX} seeds`);
  return Array.from({ length: last - first + 1 }, (_, i) => first + i);
}

function parseBugs(names: string[]): Set<RaftBug> {
  const bugs = new Set<RaftBug>();
  for (const name of names) {
    if (!(name in simBugs)) throw new SimUsageError(`unknown bug '${name}' (driftwood sim --list-bugs)`);
    bugs.add(name as RaftBug);
  }
  return bugs;
}

/** Runs `driftwood sim <args>`; returns the exit code (0: no violation, 1: violations, 2: usage). */
export async function runSimCommand(argv: string[], io: SimIO): Promise<number> {
  const { values, positionals } = parseArgs({
    args: argv,
    strict: true,
    allowPositionals: true,
    options: {
      seeds: { type: 'string', default: '1..100' },
      seed: { type: 'string' },
      nodes: { type: 'string' },
      bug: { type: 'string', multiple: true, default: [] },
      'list-bugs': { type: 'boolean', default: false },
      'fault-ms': { type: 'string' },
      'heal-ms': { type: 'string' },
      duration: { type: 'string' },
      json: { type: 'boolean', default: false },
      trace: { type: 'boolean', default: false },
      workers: { type: 'string' },
      partitions: { type: 'string' },
      rf: { type: 'string' },
      faults: { type: 'string' },
      'group-members': { type: 'string' },
      'classic-members': { type: 'string' },
    },
  });
  if (values['list-bugs']) {
    for (const [name, effect] of Object.entries(simBugs)) io.stdout(`raft     ${name.padEnd(26)} ${effect}\n`);
    for (const [name, effect] of Object.entries(clusterSimBugs)) io.stdout(`cluster  ${name.padEnd(26)} ${effect}\n`);
    return 0;
  }
  // The whole cluster is what `driftwood sim` runs; `raft` runs the bare quorum.
  const kind = positionals[0] ?? 'cluster';
  if ((kind !== 'raft' && kind !== 'cluster') || positionals.length > 1) {
    throw new SimUsageError('usage: driftwood sim [cluster|raft] --seeds A..B [--nodes N] [--partitions P] [--rf R] [--faults all|crash,...] [--group-members N] [--classic-members N] [--duration 60s | --fault-ms MS] [--heal-ms MS] [--bug NAME] [--workers N] [--json] [--trace]');
  }
  const defaults = kind === 'raft' ? defaultRaftSimOptions : defaultClusterSimOptions;
  const seeds = parseSeeds(values.seed ?? values.seeds);
  const nodes = Number(values.nodes ?? defaults.nodes);
  if (!Number.isSafeInteger(nodes) || nodes < 3 || nodes > 7) throw new SimUsageError(`--nodes must be 3 to 7, got '${values.nodes ?? ''}'`);
  const healMs = Number(values['heal-ms'] ?? defaults.healMs);
  if (values.duration !== undefined && values['fault-ms'] !== undefined) throw new SimUsageError('--duration and --fault-ms both set the faulty time; give one');
  // --duration is the whole virtual time of a seed: faults, then --heal-ms to converge.
  const faultMs = values.duration === undefined ? Number(values['fault-ms'] ?? defaults.faultMs) : parseDurationMs(values.duration) - healMs;
  if (values.duration !== undefined && faultMs <= 0) throw new SimUsageError(`--duration must be longer than --heal-ms (${healMs} ms)`);
  if (!Number.isSafeInteger(faultMs) || faultMs < 0 || !Number.isSafeInteger(healMs) || healMs < 1000) throw new SimUsageError('--fault-ms must be >= 0 and --heal-ms >= 1000');
  if (values.trace && seeds.length !== 1) throw new SimUsageError('--trace takes one --seed');
  const workers = Number(values.workers ?? os.availableParallelism());
  if (!Number.isSafeInteger(workers) || workers < 1 || workers > 64) throw new SimUsageError(`--workers must be 1 to 64, got '${values.workers ?? ''}'`);
  if (kind === 'cluster') {
    const partitions = Number(values.partitions ?? 3);
    if (!Number.isSafeInteger(partitions) || partitions < 1 || partitions > 64) throw new SimUsageError(`--partitions must be 1 to 64, got '${values.partitions ?? ''}'`);
    const replicationFactor = Number(values.rf ?? Math.min(3, nodes));
    if (!Number.isSafeInteger(replicationFactor) || replicationFactor < 1 || replicationFactor > nodes) throw new SimUsageError(`--rf must be 1 to --nodes (${nodes}), got '${values.rf ?? ''}'`);
    const faults = parseFaults(values.faults ?? 'all');
    const groupMembers = Number(values['group-members'] ?? DEFAULT_GROUP_MEMBERS);
    if (!Number.isSafeInteger(groupMembers) || groupMembers < 0 || groupMembers > 16) throw new SimUsageError(`--group-members must be 0 to 16, got '${values['group-members'] ?? ''}'`);
    const classicMembers = Number(values['classic-members'] ?? DEFAULT_CLASSIC_MEMBERS);
    if (!Number.isSafeInteger(classicMembers) || classicMembers < 0 || classicMembers > 16) throw new SimUsageError(`--classic-members must be 0 to 16, got '${values['classic-members'] ?? ''}'`);
    const options = { nodes, faultMs, healMs, partitions, replicationFactor, faults, groupMembers, classicMembers, bugs: parseClusterBugs(values.bug) };
    return runClusterSeeds(seeds, { ...options, ...(values.trace ? { trace: (line: string) => { io.stderr(`${line}\n`); } } : {}) }, workers, values.json, io);
  }
  if (values.partitions !== undefined || values.rf !== undefined || values.faults !== undefined || values['group-members'] !== undefined || values['classic-members'] !== undefined) throw new SimUsageError('--partitions, --rf, --faults, --group-members and --classic-members apply to the cluster simulation only');
  const bugs = parseBugs(values.bug);
  return runSeeds(seeds, { nodes, faultMs, healMs, bugs }, workers, values.json, io);
}

/**
 * Runs the seeds, on `workers` threads when there are several seeds and threads (one seed at
 * a time per thread, so slow seeds do not hold up a batch), else here. Results come back in
 * seed order whatever the threads did.
 */
async function runAll<R extends { seed: number }>(work: SeedWork, seeds: number[], workers: number, runHere: (seed: number) => Promise<R>, onResult: (result: R) => void): Promise<R[]> {
  const results: R[] = [];
  if (workers <= 1 || seeds.length <= 1) {
    for (const seed of seeds) {
      const result = await runHere(seed);
      results.push(result);
      onResult(result);
    }
    return results;
  }
  const queue = [...seeds];
  const url = new URL(import.meta.url.endsWith('.ts') ? './seed-worker.ts' : './seed-worker.js', import.meta.url);
  await Promise.all(Array.from({ length: Math.min(workers, seeds.length) }, () => new Promise<void>((resolve, reject) => {
    const worker = new Worker(url, { workerData: work });
    const next = (): void => {
      const seed = queue.shift();
      if (seed === undefined) {
        void worker.terminate().then(() => { resolve(); });
        return;
      }
      worker.postMessage(seed);
    };
    worker.on('message', (result: R) => {
      results.push(result);
      onResult(result);
      next();
    });
    worker.on('error', reject);
    next();
  })));
  return results.sort((a, b) => a.seed - b.seed);
}

function parseFaults(text: string): Set<FaultKind> {
  const faults = new Set<FaultKind>();
  for (const name of text.split(',')) {
    if (name === 'all') {
      for (const kind of defaultFaultKinds) faults.add(kind);
      continue;
    }
    if (!(faultKinds as readonly string[]).includes(name)) throw new SimUsageError(`unknown fault '${name}' (${faultKinds.join(', ')}, or all: every kind but ${optInFaultKinds.join(', ')})`);
    faults.add(name as FaultKind);
  }
  return faults;
}

/** The cluster simulation takes its own defects and the Raft core's. */
function parseClusterBugs(names: string[]): Set<BrokerNodeBug | RaftBug> {
  const bugs = new Set<BrokerNodeBug | RaftBug>();
  for (const name of names) {
    if (!(name in clusterSimBugs) && !(name in simBugs)) throw new SimUsageError(`unknown bug '${name}' (driftwood sim --list-bugs)`);
    bugs.add(name as BrokerNodeBug | RaftBug);
  }
  return bugs;
}

/** Consumer-group members sharing the data topic in every cluster seed the command runs. */
const DEFAULT_GROUP_MEMBERS = 3;
/** Members of a group under Kafka's classic protocol, on by default like the other group. */
const DEFAULT_CLASSIC_MEMBERS = 3;

interface ClusterRun { nodes: number; faultMs: number; healMs: number; partitions: number; replicationFactor: number; faults: Set<FaultKind>; groupMembers: number; classicMembers: number; bugs: Set<BrokerNodeBug | RaftBug>; trace?: (line: string) => void }

async function runClusterSeeds(seeds: number[], options: ClusterRun, workers: number, json: boolean, io: SimIO): Promise<number> {
  const allFaults = options.faults.size === defaultFaultKinds.length && defaultFaultKinds.every((kind) => options.faults.has(kind));
  const flags = [
    ...[...options.bugs].map((bug) => ` --bug ${bug}`),
    options.partitions === 3 ? '' : ` --partitions ${options.partitions}`,
    options.replicationFactor === Math.min(3, options.nodes) ? '' : ` --rf ${options.replicationFactor}`,
    allFaults ? '' : ` --faults ${[...options.faults].join(',')}`,
    options.groupMembers === DEFAULT_GROUP_MEMBERS ? '' : ` --group-members ${options.groupMembers}`,
    options.classicMembers === DEFAULT_CLASSIC_MEMBERS ? '' : ` --classic-members ${options.classicMembers}`,
  ].join('');
  const wallStart = performance.now();
  const progress = new Progress(io, seeds.length);
  let done = 0;
  let failing = 0;
  // Threads get the options as data; a trace (a function) needs one seed, run here.
  const plain = { nodes: options.nodes, faultMs: options.faultMs, healMs: options.healMs, partitions: options.partitions, replicationFactor: options.replicationFactor, faults: options.faults, groupMembers: options.groupMembers, classicMembers: options.classicMembers, bugs: options.bugs };
  const results = await runAll<ClusterSimResult>({ kind: 'cluster', options: plain }, seeds, workers, (seed) => runClusterSim({ seed, ...options }), (result) => {
    done += 1;
    if (result.violations.length > 0) {
      failing += 1;
      progress.interrupt();
    }
    for (const violation of result.violations) {
      io.stderr(`seed ${result.seed}: ${violation}\n  replay: driftwood sim cluster --seed ${result.seed} --nodes ${options.nodes} --fault-ms ${options.faultMs} --heal-ms ${options.healMs}${flags}\n`);
    }
    progress.update(done, failing);
  });
  progress.finish();
  const wallSeconds = (performance.now() - wallStart) / 1000;
  const simulatedSeconds = results.reduce((sum, r) => sum + r.simulatedMs, 0) / 1000;
  const brokerFailovers = results.flatMap((r) => r.brokerFailoverMs).sort((a, b) => a - b);
  const controllerFailovers = results.flatMap((r) => r.controllerFailoverMs).sort((a, b) => a - b);
  const failovers = [...brokerFailovers, ...controllerFailovers].sort((a, b) => a - b);
  const total = (field: (r: ClusterSimResult) => number): number => results.reduce((sum, r) => sum + field(r), 0);
  const events = total((r) => r.events);
  const summary = {
    seeds: results.length,
    violations: total((r) => r.violations.length),
    violationsByKind: sumCounts(results.map((r) => r.violationKinds)),
    failingSeeds: results.filter((r) => r.violations.length > 0).map((r) => r.seed).slice(0, 20),
    simulatedSeconds: Math.round(simulatedSeconds),
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    speedup: Math.round(simulatedSeconds / wallSeconds),
    events,
    eventsPerSec: Math.round(events / wallSeconds),
    acknowledged: total((r) => r.recordsAcknowledged),
    acknowledgedAcksOne: total((r) => r.recordsAcknowledgedAcksOne),
    lost: total((r) => r.lost),
    lostAcksOne: total((r) => r.lostAcksOne),
    duplicates: total((r) => r.duplicates),
    idempotentRetried: total((r) => r.idempotentRetried),
    producerIdResets: total((r) => r.producerIdResets),
    producesAbandoned: total((r) => r.producesAbandoned),
    recordsConsumed: total((r) => r.recordsConsumed),
    groupRecordsDelivered: total((r) => r.group?.delivered ?? 0),
    groupCommitsAcknowledged: total((r) => r.group?.commitsAcknowledged ?? 0),
    groupPartitionsMoved: total((r) => r.group?.rebalances ?? 0),
    classicGenerations: total((r) => r.classic?.generations ?? 0),
    classicRecordsDelivered: total((r) => r.classic?.delivered ?? 0),
    classicCommitsAcknowledged: total((r) => r.classic?.commitsAcknowledged ?? 0),
    classicCommitsRefused: total((r) => r.classic?.commitsRefused ?? 0),
    classicMemberDeaths: total((r) => r.classic?.deaths ?? 0),
    reassignmentSteps: total((r) => r.reassignmentSteps),
    reassignmentsCompleted: total((r) => r.reassignmentsCompleted),
    brokersDecommissioned: total((r) => r.brokersDecommissioned),
    failovers: failovers.length,
    failoverMsP50: percentile(failovers, 0.5),
    failoverMsP99: percentile(failovers, 0.99),
    topicsCreated: results.reduce((sum, r) => sum + r.topicsCreated, 0),
    topicsDeleted: results.reduce((sum, r) => sum + r.topicsDeleted, 0),
    brokerFailovers: brokerFailovers.length,
    brokerFailoverMsP50: percentile(brokerFailovers, 0.5),
    brokerFailoverMsP99: percentile(brokerFailovers, 0.99),
    controllerFailovers: controllerFailovers.length,
    controllerFailoverMsP50: percentile(controllerFailovers, 0.5),
    controllerFailoverMsP99: percentile(controllerFailovers, 0.99),
    faultsInjected: sumCounts(results.map((r) => r.faultsInjected)),
    traceHash: results.length === 1 ? results[0]?.traceHash ?? null : null,
  };
  if (json) io.stdout(`${JSON.stringify(summary)}\n`);
  else for (const [key, value] of Object.entries(summary)) io.stdout(`${key.padEnd(24)} ${JSON.stringify(value)}\n`);
  return summary.violations === 0 ? 0 : 1;
}

async function runSeeds(seeds: number[], options: { nodes: number; faultMs: number; healMs: number; bugs: Set<RaftBug> }, workers: number, json: boolean, io: SimIO): Promise<number> {
  const wallStart = performance.now();
  const progress = new Progress(io, seeds.length);
  let done = 0;
  let failing = 0;
  const bugFlags = [...options.bugs].map((bug) => ` --bug ${bug}`).join('');
  const results = await runAll<RaftSimResult>({ kind: 'raft', options }, seeds, workers, (seed) => runRaftSim({ seed, ...options }), (result) => {
    done += 1;
    if (result.violations.length > 0) {
      failing += 1;
      progress.interrupt();
    }
    for (const violation of result.violations) {
      io.stderr(`seed ${result.seed}: ${violation}\n  replay: driftwood sim raft --seed ${result.seed} --nodes ${options.nodes}${bugFlags}\n`);
    }
    progress.update(done, failing);
  });
  progress.finish();
  const summary = summarize(results, (performance.now() - wallStart) / 1000);
  if (json) io.stdout(`${JSON.stringify(summary)}\n`);
  else for (const [key, value] of Object.entries(summary)) io.stdout(`${key.padEnd(18)} ${JSON.stringify(value)}\n`);
  return summary.violations === 0 ? 0 : 1;
}

function summarize(results: RaftSimResult[], wallSeconds: number): Record<string, number | string | number[] | null> & { violations: number } {
  const simulatedSeconds = results.reduce((sum, r) => sum + r.simulatedMs, 0) / 1000;
  const elections = results.flatMap((r) => r.electionMs).sort((a, b) => a - b);
  const failing = results.filter((r) => r.violations.length > 0).map((r) => r.seed);
  return {
    seeds: results.length,
    violations: results.reduce((sum, r) => sum + r.violations.length, 0),
    failingSeeds: failing.slice(0, 20),
    simulatedSeconds: Math.round(simulatedSeconds),
    wallSeconds: Math.round(wallSeconds * 10) / 10,
    speedup: Math.round(simulatedSeconds / wallSeconds),
    events: results.reduce((sum, r) => sum + r.events, 0),
    elections: elections.length,
    electionMsP50: percentile(elections, 0.5),
    electionMsP99: percentile(elections, 0.99),
    acknowledged: results.reduce((sum, r) => sum + r.acknowledged, 0),
    traceHash: results.length === 1 ? results[0]?.traceHash ?? null : null,
  };
}

function sumCounts(counts: ReadonlyArray<Record<string, number>>): Record<string, number> {
  const total: Record<string, number> = {};
  for (const count of counts) for (const [key, value] of Object.entries(count)) total[key] = (total[key] ?? 0) + value;
  return Object.fromEntries(Object.entries(total).sort(([a], [b]) => a.localeCompare(b)));
}

function percentile(sorted: number[], q: number): number | null {
  if (sorted.length === 0) return null;
  return Math.round(sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0);
}
