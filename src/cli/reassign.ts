// Moving replicas from the command line: `driftwood partitions reassign|reassignments`,
// `driftwood cluster rebalance` and `driftwood brokers decommission`, in the spirit of
// kafka-reassign-partitions and rpk cluster partitions move. A plan is printed as a table;
// --wait follows the moves to the end with a progress line per second.
import { parseArgs } from 'node:util';
import { DriftwoodError } from '../../storage/errors.js';
import type { Admin, PlannedMoveView, ReassignmentView } from '../client/admin.js';
import { withAdmin } from './admin.js';
import { cell, clientFlags, integerFlag, positionals, printJson, table, UsageError, type CommandIO } from './io.js';
import { clientTargetFrom } from './security-flags.js';

const CLIENT_OPTIONS = '[--bootstrap HOST:PORT,...] [--token-file FILE] [--tls-ca FILE] [--json]';
const MOVE_OPTIONS = '[--throttle BYTES_PER_SEC] [--wait [--wait-timeout-ms N]]';

export const PARTITIONS_USAGE = `usage: driftwood partitions <reassign|reassignments> [options]

  partitions reassign --topic T --partition P (--replicas 2,3,4 | --cancel) ${MOVE_OPTIONS} ${CLIENT_OPTIONS}
      move a partition to new replicas: they copy from the leader, join the ISR, then the
      old ones are dropped and delete their data; --cancel returns to the old replicas
  partitions reassignments ${CLIENT_OPTIONS}
      the partitions being moved: replicas, target, ISR, and per replica bytes copied and lag

  --throttle        copy at most this many bytes/s per broker (kept until changed; --throttle=-1 removes it)
  --wait            follow the move until it completes (progress every second on stderr)
  --wait-timeout-ms how long --wait waits (default 600000)`;

export const REBALANCE_USAGE = `usage: driftwood cluster rebalance [--dry-run] ${MOVE_OPTIONS} ${CLIENT_OPTIONS}
      even out replicas, then preferred leaders, across the live brokers (fewest moves
      first); prints the plan as a table and starts it unless --dry-run`;

export const BROKERS_USAGE = `usage: driftwood brokers decommission ID [--dry-run] ${MOVE_OPTIONS} ${CLIENT_OPTIONS}
      move every replica off broker ID and place no new ones there; refused when the other
      brokers cannot hold some partition's replication factor. Stop the broker once it
      holds nothing (--wait waits for that)`;

const moveFlags = {
  ...clientFlags,
  throttle: { type: 'string' },
  wait: { type: 'boolean', default: false },
  'wait-timeout-ms': { type: 'string' },
  'dry-run': { type: 'boolean', default: false },
} as const;

/** The throttle's bounds (the broker's own): at least 1 KiB/s, or -1 to remove it. */
const THROTTLE_MIN = 1024;
const THROTTLE_MAX = 2 ** 40;
const WAIT_TIMEOUT_MS_MAX = 86_400_000;
const POLL_MS = 1000;

function throttleFlag(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (value === '-1') return -1;
  return integerFlag('throttle', value, 0, THROTTLE_MIN, THROTTLE_MAX);
}

function moveOptions(values: { throttle?: string | undefined }): { throttleBytesPerSec?: number } {
  const throttleBytesPerSec = throttleFlag(values.throttle);
  return throttleBytesPerSec === undefined ? {} : { throttleBytesPerSec };
}

export async function runPartitions(args: string[], io: CommandIO): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'reassign': return reassign(rest, io);
    case 'reassignments': return listMoves(rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(`${PARTITIONS_USAGE}\n`);
      return;
    default:
      throw new UsageError(`unknown partitions command '${sub}' (reassign, reassignments)`);
  }
}

async function reassign(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: { ...moveFlags, topic: { type: 'string' }, partition: { type: 'string' }, replicas: { type: 'string' }, cancel: { type: 'boolean', default: false } } });
  if (values.help) {
    io.stdout(`${PARTITIONS_USAGE}\n`);
    return;
  }
  if (values.topic === undefined || values.partition === undefined) throw new UsageError('partitions reassign needs --topic and --partition');
  if ((values.replicas === undefined) === !values.cancel) throw new UsageError('give --replicas 1,2,3 or --cancel');
  if (values['dry-run']) throw new UsageError('--dry-run is for cluster rebalance and brokers decommission');
  const partition = integerFlag('partition', values.partition, 0, 0, 100_000);
  const replicas = values.replicas === undefined ? null : parseReplicas(values.replicas);
  const topic = values.topic;
  await withAdmin(await clientTargetFrom(values, io), async (admin) => {
    const answer = await admin.alterReassignments([{ topic, partition, replicas }], moveOptions(values));
    const moving = answer.partitions.filter((p) => p.topic === topic && p.partition === partition);
    if (values.json && !values.wait) {
      printJson(io, { partitions: moving });
      return;
    }
    if (!values.json) io.stdout(moving.length === 0 ? `${topic}-${partition}: ${replicas === null ? 'cancelled' : `now on ${replicas.join(',')}`}\n` : progressTable(moving));
    if (values.wait) await waitForMoves(admin, [{ topic, partition }], waitTimeout(values), io);
    if (values.json) printJson(io, { done: true, topic, partition });
  });
}

function parseReplicas(text: string): number[] {
  const ids = text.split(',').map((item) => integerFlag('replicas', item.trim(), 0, 1, 2 ** 31 - 1));
  if (new Set(ids).size !== ids.length) throw new UsageError(`--replicas ${text} names a broker twice`);
  return ids;
}

function waitTimeout(values: { 'wait-timeout-ms'?: string | undefined }): number {
  return integerFlag('wait-timeout-ms', values['wait-timeout-ms'], 600_000, 1, WAIT_TIMEOUT_MS_MAX);
}

async function listMoves(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${PARTITIONS_USAGE}\n`);
    return;
  }
  const listing = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.listReassignments());
  if (values.json) {
    printJson(io, listing);
    return;
  }
  const throttle = listing.throttleBytesPerSec > 0 ? `throttle: ${listing.throttleBytesPerSec} bytes/s per broker\n` : 'throttle: none\n';
  io.stdout(listing.partitions.length === 0 ? `no partition is being reassigned\n${throttle}` : `${progressTable(listing.partitions)}${throttle}`);
}

/** One row per moving partition: replicas, target, ISR, and the adding replicas' copy progress. */
export function progressTable(partitions: readonly ReassignmentView[]): string {
  const rows = partitions.map((p) => {
    const adding = p.progress.filter((r) => r.role === 'adding');
    const copied = adding.map((r) => `${r.broker}:${r.bytesCopied === null ? '?' : r.bytesCopied}/${p.leaderLogBytes === null ? '?' : p.leaderLogBytes}`).join(' ');
    const lag = adding.map((r) => `${r.broker}:${r.lag === null ? '?' : r.lag}`).join(' ');
    return [p.topic, String(p.partition), cell(p.replicas), cell(p.target), cell(p.adding), cell(p.removing), cell(p.isr), p.leader === null ? 'none' : String(p.leader), copied || '-', lag || '-'];
  });
  return table(['TOPIC', 'PARTITION', 'REPLICAS', 'TARGET', 'ADDING', 'REMOVING', 'ISR', 'LEADER', 'COPIED(BYTES)', 'LAG(RECORDS)'], rows);
}

export function planTable(moves: readonly PlannedMoveView[]): string {
  if (moves.length === 0) return 'nothing to move\n';
  return table(['TOPIC', 'PARTITION', 'FROM', 'TO'], moves.map((m) => [m.topic, String(m.partition), cell(m.from), cell(m.to)]));
}

/** Polls until none of `partitions` is being reassigned, a line of progress per poll on stderr. */
async function waitForMoves(admin: Admin, partitions: ReadonlyArray<{ topic: string; partition: number }>, timeoutMs: number, io: CommandIO): Promise<void> {
  const wanted = new Set(partitions.map((p) => `${p.topic}\u0000${p.partition}`));
  const startMs = Date.now();
  for (;;) {
    const listing = await admin.listReassignments();
    const moving = listing.partitions.filter((p) => wanted.has(`${p.topic}\u0000${p.partition}`));
    const elapsedS = ((Date.now() - startMs) / 1000).toFixed(0);
    if (moving.length === 0) {
      io.stderr(`[${elapsedS} s] ${partitions.length} of ${partitions.length} partitions moved\n`);
      return;
    }
    const copied = moving.flatMap((p) => p.progress.filter((r) => r.role === 'adding').map((r) => r.bytesCopied ?? 0)).reduce((a, b) => a + b, 0);
    const total = moving.reduce((sum, p) => sum + (p.leaderLogBytes ?? 0) * p.adding.length, 0);
    io.stderr(`[${elapsedS} s] ${partitions.length - moving.length} of ${partitions.length} partitions moved; copying ${copied} of ${total} bytes\n`);
    if (Date.now() - startMs >= timeoutMs) throw new DriftwoodError('REQUEST_TIMED_OUT', `${moving.length} partitions were still moving after ${timeoutMs} ms (driftwood partitions reassignments shows them)`);
    if (io.interrupt?.aborted === true) return;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

export async function runClusterRebalance(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({ args, strict: true, options: moveFlags });
  if (values.help) {
    io.stdout(`${REBALANCE_USAGE}\n`);
    return;
  }
  const dryRun = values['dry-run'];
  await withAdmin(await clientTargetFrom(values, io), async (admin) => {
    const plan = await admin.rebalance({ dryRun, ...moveOptions(values) });
    if (values.json) printJson(io, plan);
    else io.stdout(`${planTable(plan.moves)}${dryRun || plan.moves.length === 0 ? '' : `started ${plan.moves.length} moves\n`}`);
    if (values.wait && !dryRun) await waitForMoves(admin, plan.moves, waitTimeout(values), io);
  });
}

export async function runBrokers(args: string[], io: CommandIO): Promise<void> {
  const [sub, ...rest] = args;
  if (sub === undefined || sub === 'help' || sub === '--help' || sub === '-h') {
    io.stdout(`${BROKERS_USAGE}\n`);
    return;
  }
  if (sub !== 'decommission') throw new UsageError(`unknown brokers command '${sub}' (decommission)`);
  const { values, positionals: given } = parseArgs({ args: rest, strict: true, allowPositionals: true, options: moveFlags });
  if (values.help) {
    io.stdout(`${BROKERS_USAGE}\n`);
    return;
  }
  const [idText] = positionals(given, ['ID'], 'brokers decommission') as [string];
  const brokerId = integerFlag('ID', idText, 0, 1, 2 ** 31 - 1);
  const dryRun = values['dry-run'];
  await withAdmin(await clientTargetFrom(values, io), async (admin) => {
    const answer = await admin.decommissionBroker(brokerId, { dryRun, ...moveOptions(values) });
    if (values.json) printJson(io, answer);
    else io.stdout(`${planTable(answer.moves)}${dryRun ? '' : `broker ${brokerId} is decommissioned: no new replicas go to it; ${answer.moves.length} partitions are moving off it\n`}`);
    if (values.wait && !dryRun) {
      await waitForMoves(admin, answer.moves, waitTimeout(values), io);
      io.stderr(`broker ${brokerId} holds no replica now; it can be stopped\n`);
    }
  });
}
