import t from 'tap';
import { defaultFaultKinds, runClusterSim } from '../../sim/cluster-sim.js';
import { runSimCommand } from '../../sim/cli.js';
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { capture } from '../helpers/capture.js';
import { BIN, requireBuild } from '../helpers/processes.js';

const execFileAsync = promisify(execFile);

// Regressions: seed 3 found a new controller deciding against an image that lacked its
// predecessor's last entries (a PartitionChange for a removed topic crashed every node);
// seed 9 found a follower that had led an epoch without writing in it diverging forever;
// seed 88 the same with an empty log (the leader skipped the epoch check at the log start);
// seed 252 lost acknowledged records: a restarted leader acted on its stale image, whose ISR
// lacked a member the controller had added, and acknowledged without it. Later workload
// changes moved these seeds off their original paths (seed 252 no longer fails without the
// fix), so they run as plain seeds; the seed-252 fix is held by `--bug roles-before-caught-up`
// and its checker below, the others by unit tests in test/replica/partition.test.ts.
// Seed 394 found a sole ISR member counting records it had written but not yet synced
// (flush.ms 0) in its high watermark: a consumer read them, a power loss took them back.
const SEEDS = [...Array.from({ length: 12 }, (_, i) => i + 1), 88, 252, 394];

void t.test('cluster simulation: controller and brokers under faults keep every checker quiet', async (t) => {
  for (const seed of SEEDS) {
    const result = await runClusterSim({ seed, nodes: 3, faultMs: 30_000, healMs: 20_000 });
    t.same(result.violations, [], `seed ${seed} (replay: driftwood sim cluster --seed ${seed})`);
    t.ok(result.topicsCreated > 0, `seed ${seed} created ${result.topicsCreated} topics through the faults`);
    t.ok(result.recordsAcknowledged > 0, `seed ${seed}: ${result.recordsAcknowledged} acknowledged records, every one checked`);
    t.ok(result.appliedIndex > 0);
  }
});

// Five nodes. Seed 163 found a leader dropping an ISR expansion whose AlterPartition answer
// was lost, then committing over the smaller ISR while the controller had added the member
// (a consumer saw the high watermark go back); seed 75 an acks=1 record acknowledged at one
// offset and kept only where earlier attempts of its batch landed, which the checker called
// inconsistent (acks=1 promises nothing past the leader); seed 785 a deposed leader that,
// told its epoch was stale, dropped a pending ISR expansion the controller had committed and
// then committed acks=all writes the new leader lacked; seed 1574 a controller, resumed after
// a pause, whose topic removal timed out and which then decided against an image without it
// (a change to a deleted partition broke every node). All are also unit tests.
void t.test('cluster simulation: five nodes', async (t) => {
  for (const seed of [7, 75, 163, 785, 1574]) {
    const result = await runClusterSim({ seed, nodes: 5, faultMs: 30_000, healMs: 20_000 });
    t.same(result.violations, [], `seed ${seed} (replay: driftwood sim --seed ${seed} --nodes 5)`);
  }
});

// The producer's acks=all batches are idempotent: every retry of one (its answer lost, its
// leader gone) must be dropped by whichever broker leads then, so no record of it is stored
// twice (a duplicate violation). Seed 2 retries dozens under faults; --bug idempotence-off
// below shows the checker sees the copies when leaders do not drop them.
void t.test('cluster simulation: retried idempotent batches are stored once', async (t) => {
  const result = await runClusterSim({ seed: 2, nodes: 3, faultMs: 30_000, healMs: 20_000 });
  t.same(result.violations, [], 'seed 2 (replay: driftwood sim cluster --seed 2)');
  t.ok(result.idempotentRetried >= 20, `${result.idempotentRetried} idempotent batches were sent more than once`);
});

// Disk errors (opt-in: --faults all,disk-error): a node's next write to its partition disk
// fails with ENOSPC or EIO; the partition goes offline on that node, the controller moves
// its leadership and ISR, and the node opens the log again later. Seeds 28 and 30 stopped a
// node that closed its logs (a clean stop, a topic deletion) on a disk that had just failed.
void t.test('cluster simulation: disk errors take partitions offline without losing an acknowledged record', async (t) => {
  for (const seed of [28, 30, 31]) {
    const result = await runClusterSim({ seed, nodes: 3, faultMs: 30_000, healMs: 20_000, faults: new Set([...defaultFaultKinds, 'disk-error']) });
    t.same(result.violations, [], `seed ${seed} (replay: driftwood sim cluster --seed ${seed} --faults all,disk-error)`);
    t.ok((result.faultsInjected['disk-error'] ?? 0) > 0, `seed ${seed}: ${result.faultsInjected['disk-error']} disk errors`);
  }
  // Seed 2 with moves too: a disk error on a partition directory's removal (a replica moved
  // away) left it on the disk for good; the removal is now retried after offlineRetryMs.
  const moved = await runClusterSim({ seed: 2, nodes: 3, faultMs: 30_000, healMs: 20_000, faults: new Set([...defaultFaultKinds, 'disk-error', 'reassign']) });
  t.same(moved.violations, [], 'seed 2 (replay: driftwood sim cluster --seed 2 --faults all,reassign,disk-error)');
});

// Replica moves (opt-in: --faults all,reassign): an operator grows, shrinks, replaces and
// reorders data partitions' replicas, replaces or cancels moves in flight, rebalances and
// sets the throttle while the nemesis crashes and cuts nodes. Seed 3 found a broker that was
// down while its replica moved away keeping the replica's directory forever (stray-replica);
// seeds 15 and 19 a cancellation that dropped an in-sync added replica and left one in-sync
// replica under min.insync.replicas 2 (now refused until the original replicas catch up).
void t.test('cluster simulation: reassignments under faults lose nothing and complete after healing', async (t) => {
  const faults = new Set([...defaultFaultKinds, 'reassign' as const]);
  for (const seed of [3, 15, 19]) {
    const result = await runClusterSim({ seed, nodes: 3, faultMs: 30_000, healMs: 20_000, faults, groupMembers: 3 });
    t.same(result.violations, [], `seed ${seed} (replay: driftwood sim cluster --seed ${seed} --faults all,reassign)`);
    t.ok(result.reassignmentsCompleted > 0, `seed ${seed}: ${result.reassignmentSteps} reassignment steps, ${result.reassignmentsCompleted} completed`);
    t.ok(result.recordsAcknowledged > 0);
  }
});

// Decommissions (opt-in: --faults all,reassign,decommission) on five nodes: a broker is
// emptied while the nemesis works, never more than leaves the data topic's RF of brokers;
// after healing it holds no replica and no directory. Seeds 3 and 4 each decommission one.
void t.test('cluster simulation: five nodes, a broker decommissioned under faults', async (t) => {
  const faults = new Set([...defaultFaultKinds, 'reassign' as const, 'decommission' as const]);
  for (const seed of [3, 4]) {
    const result = await runClusterSim({ seed, nodes: 5, faultMs: 30_000, healMs: 20_000, faults, groupMembers: 3 });
    t.same(result.violations, [], `seed ${seed} (replay: driftwood sim cluster --seed ${seed} --nodes 5 --faults all,reassign,decommission)`);
    t.equal(result.brokersDecommissioned, 1, `seed ${seed}: ${result.reassignmentsCompleted} moves completed`);
  }
});

// A consumer group of three members shares the data topic through the real coordinator while
// the nemesis works: no partition held by two members at once, no acknowledged commit lost,
// no record below the committed offsets skipped. Seed 2 once never loaded its coordinator:
// a restarted leader alone in its ISR did not move its high watermark until an append came.
// Seed 59 stopped a node on a commit stamped with a fractional wall-clock time (the records
// keep whole ms now).
void t.test('cluster simulation: a consumer group under faults', async (t) => {
  for (const seed of [1, 2, 3, 4, 59]) {
    const result = await runClusterSim({ seed, nodes: 3, faultMs: 30_000, healMs: 20_000, groupMembers: 3 });
    t.same(result.violations, [], `seed ${seed} (replay: driftwood sim cluster --seed ${seed})`);
    t.ok((result.group?.delivered ?? 0) > 0 && (result.group?.commitsAcknowledged ?? 0) > 0, `seed ${seed}: ${JSON.stringify(result.group)}`);
  }
});

// Coordinators rewrite their state every 2 s instead of every hour, so replays after
// failovers start from checkpoints written under faults: the group's checks must still hold.
void t.test('cluster simulation: a consumer group with frequent coordinator checkpoints', async (t) => {
  for (const seed of [5, 6]) {
    const result = await runClusterSim({ seed, nodes: 3, faultMs: 30_000, healMs: 20_000, groupMembers: 3, groupCoordinator: { checkpointMs: 2000 } });
    t.same(result.violations, [], `seed ${seed}`);
    t.ok((result.group?.commitsAcknowledged ?? 0) > 0, `seed ${seed}: ${JSON.stringify(result.group)}`);
  }
});

// A group under Kafka's classic protocol (JoinGroup/SyncGroup/Heartbeat/OffsetCommit through
// the coordinator's classic methods) shares the data topic while the nemesis works: members
// of one generation never given one partition both, no commit of an old generation
// acknowledged after a later join was answered, no acknowledged commit lost across
// coordinator failovers, and after healing one generation of every member that consumed and
// committed up to the high watermarks. Two, three and four members.
void t.test('cluster simulation: a classic (Kafka protocol) group under faults', async (t) => {
  for (const [seed, classicMembers] of [[1, 3], [2, 2], [3, 4]] as const) {
    const result = await runClusterSim({ seed, nodes: 3, faultMs: 30_000, healMs: 20_000, classicMembers });
    t.same(result.violations, [], `seed ${seed} (replay: driftwood sim cluster --seed ${seed} --classic-members ${classicMembers})`);
    const counts = result.classic;
    t.ok(counts !== null && counts.generations > 0 && counts.delivered > 0 && counts.commitsAcknowledged > 0, `seed ${seed}: ${JSON.stringify(counts)}`);
  }
});

void t.test('cluster simulation: a seed replays exactly', async (t) => {
  const a = await runClusterSim({ seed: 5, nodes: 3, faultMs: 10_000, healMs: 10_000 });
  const b = await runClusterSim({ seed: 5, nodes: 3, faultMs: 10_000, healMs: 10_000 });
  t.equal(a.traceHash, b.traceHash);
  t.equal(a.events, b.events);
  const c = await runClusterSim({ seed: 6, nodes: 3, faultMs: 10_000, healMs: 10_000 });
  t.not(a.traceHash, c.traceHash);
});

void t.test('cluster simulation: the command, its JSON summary and bad arguments', async (t) => {
  const json = capture();
  t.equal(await runSimCommand(['cluster', '--seeds', '1..2', '--fault-ms', '5000', '--heal-ms', '10000', '--json'], json.io), 0);
  const summary = JSON.parse(json.out.join('')) as Record<string, unknown>;
  t.match(summary, { seeds: 2, violations: 0 });
  for (const key of ['violationsByKind', 'acknowledged', 'lost', 'duplicates', 'failoverMsP50', 'failoverMsP99', 'brokerFailoverMsP50', 'controllerFailoverMsP99', 'topicsCreated', 'recordsConsumed', 'speedup', 'eventsPerSec', 'faultsInjected']) t.ok(key in summary, key);
  await t.rejects(runSimCommand(['cluster', '--bug', 'no-such-bug'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['cluster', '--seeds', '1..2', '--trace'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['--faults', 'meteor'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['--nodes', '3', '--rf', '4'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['raft', '--partitions', '4'], capture().io), { name: 'SimUsageError' });
  const shaped = capture();
  t.equal(await runSimCommand(['--seed', '2', '--nodes', '5', '--partitions', '4', '--rf', '3', '--faults', 'crash-replicas,pause', '--fault-ms', '8000', '--heal-ms', '15000', '--json'], shaped.io), 0, '`driftwood sim` runs the cluster simulation');
  const shapedSummary = JSON.parse(shaped.out.join('')) as { violations: number; faultsInjected: Record<string, number> };
  t.equal(shapedSummary.violations, 0);
  t.ok(Object.keys(shapedSummary.faultsInjected).every((kind) => kind === 'crash-replicas' || kind === 'pause'), `only the chosen faults: ${JSON.stringify(shapedSummary.faultsInjected)}`);
  const timed = capture();
  t.equal(await runSimCommand(['--seeds', '1..2', '--duration', '12s', '--heal-ms', '10000', '--workers', '1', '--json'], { ...timed.io, progressBar: true }), 0);
  t.equal((JSON.parse(timed.out.join('')) as { simulatedSeconds: number }).simulatedSeconds, 24, '--duration is the whole virtual time of each seed');
  t.match(timed.err.join(''), /\r\[#{15}-{15}\] 1\/2 seeds, 0 failing/, 'a progress bar on a terminal');
  await t.rejects(runSimCommand(['--duration', '5s'], capture().io), { name: 'SimUsageError' }, 'shorter than the healing time');
  await t.rejects(runSimCommand(['--duration', '60s', '--fault-ms', '1000'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['--duration', 'soon'], capture().io), { name: 'SimUsageError' });
  const traced = capture();
  t.equal(await runSimCommand(['cluster', '--seed', '2', '--fault-ms', '2000', '--heal-ms', '5000', '--trace'], traced.io), 0);
  t.match(traced.err.join(''), /start n1[\s\S]*n\d leader leader \d term 1[\s\S]*acked b\d+ acks=-?1 data-\d@\d+/, '--trace prints the event log');
});

// Each deliberate defect is caught at the first seed that catches it in seeds 1..100 of the
// default command (three nodes, both consumer groups on), measured when this table was last
// set. Workload changes move these seeds (truncate-to-hw was first caught at 19, then 3, and
// at 13 with the group workload, then 2 since fetch sessions read only changed partitions,
// then 4 with the classic group; elect-outside-isr and grant-unreleased moved from 1 to 4
// and 7 with the classic group), so a CI run checks
// the seed named here, and the README gives the measured first catches. The issue asks for
// 100 seeds at most.
for (const [bug, seed, anomaly] of [
  ['controller-activate-early', 3, /\[(invariant|metadata-divergence|fenced-leader|inconsistent-offsets)\]/],
  ['ack-before-isr', 1, /\[(lost-write|inconsistent-offsets)\]/],
  ['truncate-to-hw', 4, /\[(lost-write|inconsistent-offsets|nonmonotonic-hw)\]/],
  ['elect-outside-isr', 4, /\[(lost-write|inconsistent-offsets|nonmonotonic-hw)\]/],
  ['roles-before-caught-up', 2, /\[(unregistered-leader|nonmonotonic-hw)\]/],
  ['hw-regress', 1, /\[nonmonotonic-hw\] .* high watermark go back/],
  ['idempotence-off', 1, /\[duplicate\] .* sent by an idempotent producer/],
  ['grant-unreleased', 7, /\[two-owners\] sim-group: m\d was given data-\d while m\d still holds it/],
  ['classic-forget-generation', 2, /\[classic-(stale-commit|two-owners)\] sim-classic/],
] as const) {
  void t.test(`cluster simulation: --bug ${bug} is caught at seed ${seed}`, async (t) => {
    const io = capture();
    t.equal(await runSimCommand(['cluster', '--seed', String(seed), '--bug', bug, '--json'], io.io), 1);
    const summary = JSON.parse(io.out.join('')) as { failingSeeds: number[]; violationsByKind: Record<string, number> };
    t.same(summary.failingSeeds, [seed], JSON.stringify(summary.violationsByKind));
    t.match(io.err.join(''), anomaly);
    t.match(io.err.join(''), new RegExp(`replay: driftwood sim cluster --seed ${seed} --nodes 3 --fault-ms 30000 --heal-ms 20000 --bug ${bug}`));
  });
}

// --bug complete-early: the controller completes a move as it starts, with the new replicas
// in the ISR before they hold anything. Caught at seed 1 of `--seeds 1..100 --faults
// all,reassign` (every seed of the 100 fails, mostly as [reassignment], some as fenced-isr
// and one as nonmonotonic-hw).
void t.test('cluster simulation: --bug complete-early is caught at seed 1 with --faults all,reassign', async (t) => {
  const io = capture();
  t.equal(await runSimCommand(['cluster', '--seed', '1', '--faults', 'all,reassign', '--bug', 'complete-early', '--json'], io.io), 1);
  const summary = JSON.parse(io.out.join('')) as { failingSeeds: number[]; violationsByKind: Record<string, number> };
  t.same(summary.failingSeeds, [1], JSON.stringify(summary.violationsByKind));
  t.match(io.err.join(''), /\[reassignment\] .* put \d into the ISR/);
  t.match(io.err.join(''), /replay: driftwood sim cluster --seed 1 --nodes 3 --fault-ms 30000 --heal-ms 20000 --bug complete-early --faults [a-z,-]*reassign/);
});

void t.test('cluster simulation: worker threads give the same results as one thread', async (t) => {
  requireBuild();
  const run = async (workers: number): Promise<Record<string, unknown>> => {
    const { stdout } = await execFileAsync(process.execPath, [BIN, 'sim', 'cluster', '--seeds', '1..4', '--fault-ms', '5000', '--heal-ms', '10000', '--workers', String(workers), '--json'], { timeout: 120_000 });
    const { wallSeconds, speedup, eventsPerSec, ...rest } = JSON.parse(stdout) as Record<string, unknown>;
    return rest;
  };
  const one = await run(1);
  const two = await run(2);
  t.same(two, one, 'seeds replay the same on any thread; results come back in seed order');
  t.match(one, { seeds: 4, violations: 0 });
});
