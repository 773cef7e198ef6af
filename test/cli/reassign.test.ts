// The replica-moving commands' own work, without a cluster: flags refused before anything is
// sent, and the plan and progress tables. The commands against real nodes run in
// test/integration/scale-out.test.ts (through the same Admin calls).
import t, { type Test } from 'tap';
import { planTable, progressTable, runBrokers, runClusterRebalance, runPartitions } from '../../src/cli/reassign.js';
import { isUsageError, type CommandIO } from '../../src/cli/io.js';

function io(): CommandIO & { out: string[] } {
  const out: string[] = [];
  return { out, stdout: (text) => { out.push(text); }, stderr: () => undefined, env: {} };
}

async function refusedAsUsage(t: Test, run: Promise<void>, what: string): Promise<void> {
  const outcome = await run.then(() => 'resolved', (error: unknown) => error);
  t.ok(isUsageError(outcome), `${what}: a usage error (${String(outcome)})`);
}

void t.test('bad flags are usage errors, before any request', async (t) => {
  const cases: string[][] = [
    ['reassign', '--partition', '0', '--replicas', '1,2'],
    ['reassign', '--topic', 't', '--replicas', '1,2'],
    ['reassign', '--topic', 't', '--partition', '0'],
    ['reassign', '--topic', 't', '--partition', '0', '--replicas', '1,2', '--cancel'],
    ['reassign', '--topic', 't', '--partition', '0', '--replicas', '1,1'],
    ['reassign', '--topic', 't', '--partition', '0', '--replicas', '1,x'],
    ['reassign', '--topic', 't', '--partition', '-1', '--replicas', '1'],
    ['reassign', '--topic', 't', '--partition', '0', '--replicas', '1', '--throttle', '10'],
    ['reassign', '--topic', 't', '--partition', '0', '--replicas', '1', '--dry-run'],
    ['move'],
  ];
  for (const args of cases) await refusedAsUsage(t, runPartitions(args, io()), args.join(' '));
  await refusedAsUsage(t, runBrokers(['decommission'], io()), 'decommission without an id');
  await refusedAsUsage(t, runBrokers(['decommission', 'x'], io()), 'decommission x');
  await refusedAsUsage(t, runBrokers(['remove', '1'], io()), 'brokers remove');
  await refusedAsUsage(t, runClusterRebalance(['--throttle=-2'], io()), 'rebalance --throttle=-2');
  const help = io();
  await runPartitions(['--help'], help);
  t.match(help.out.join(''), /partitions reassign --topic T --partition P/);
});

void t.test('the plan and progress tables', (t) => {
  t.equal(planTable([]), 'nothing to move\n');
  t.equal(planTable([{ topic: 'orders', partition: 3, from: [1, 2, 3], to: [4, 2, 3] }]), 'TOPIC   PARTITION  FROM   TO\norders  3          1,2,3  4,2,3\n');
  const text = progressTable([{
    topic: 'orders', partition: 3, replicas: [4, 2, 3, 1], target: [4, 2, 3], adding: [4], removing: [1], isr: [1, 2, 3], leader: 1,
    leaderLogEndOffset: 100, leaderLogBytes: 5000,
    progress: [
      { broker: 4, role: 'adding', inSync: false, logEndOffset: 40, lag: 60, bytesCopied: 2000 },
      { broker: 1, role: 'leader', inSync: true, logEndOffset: 100, lag: 0, bytesCopied: 5000 },
    ],
  }]);
  t.match(text, /^TOPIC +PARTITION +REPLICAS +TARGET +ADDING +REMOVING +ISR +LEADER +COPIED\(BYTES\) +LAG\(RECORDS\)$/m);
  t.match(text, /^orders +3 +4,2,3,1 +4,2,3 +4 +1 +1,2,3 +1 +4:2000\/5000 +4:60$/m);
  t.end();
});
