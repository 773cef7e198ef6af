// Online scale-out on real processes (issue 10): three brokers hold a topic of 6 partitions
// RF 3 under a steady idempotent acks=all producer; a fourth broker starts, the cluster is
// rebalanced (throttled, so the move can be watched), and every broker ends with a fair share
// of replicas and, after a preferred-leader election, of leaders; then broker 1 is
// decommissioned and ends holding nothing. No send fails, and afterwards every acknowledged
// record is in its partition once, at the offset it was acknowledged with, each key in order.
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { Admin } from '../../src/client/admin.js';
import { Producer, type RecordMetadata } from '../../src/client/producer.js';
import { freePort } from '../../src/node-free-port.js';
import { BIN, localCluster, waitFor } from '../helpers/processes.js';
import { readAll } from '../client/helpers.js';

const TOPIC = 'moves';
const PARTITIONS = 6;
const VALUE_BYTES = 512;
/** Slow enough that the rebalance's copies can be seen in progress, fast enough for CI. */
const THROTTLE_BYTES_PER_SEC = 256 * 1024;

void t.test('add a broker, rebalance, decommission another, under a steady producer', { timeout: 240_000 }, async (t) => {
  const cluster = await localCluster(t, 'scale-out', 3);
  for (const id of [1, 2, 3]) cluster.start(id, 'start');
  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`);
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  t.teardown(() => admin.close());
  const alive = async (count: number): Promise<void> => {
    await waitFor(`${count} alive brokers`, 30_000, async () => {
      const { brokers } = await admin.describeCluster();
      return brokers.filter((b) => b.state === 'alive').length === count ? true : undefined;
    });
  };
  await alive(3);
  await admin.createTopic({ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } });
  await waitFor('every partition served with a full ISR', 20_000, async () => {
    const topic = await admin.describeTopic(TOPIC);
    return topic.partitions.every((p) => p.highWatermark !== null && p.isr.length === 3) ? true : undefined;
  });

  // The steady producer.
  const producer = new Producer({ bootstrap, lingerMs: 5, requestTimeoutMs: 5000, deliveryTimeoutMs: 60_000 });
  t.teardown(() => producer.close());
  const acknowledged: Array<{ seq: number; answer: RecordMetadata }> = [];
  const failures: string[] = [];
  let seq = 0;
  const producing = { on: true };
  // Stops the stream whatever happens to the test (a failed wait would leave it running).
  t.teardown(() => { producing.on = false; });
  const sending = (async () => {
    while (producing.on) {
      await Promise.all(Array.from({ length: 20 }, () => {
        const mine = seq++;
        return producer.send({ topic: TOPIC, key: `k${mine % 24}`, value: `${mine}:`.padEnd(VALUE_BYTES, 'v') }).then(
          (answer) => { acknowledged.push({ seq: mine, answer }); },
          (error: unknown) => { failures.push(`${mine}: ${String(error)}`); },
        );
      }));
    }
  })();
  await waitFor('some data to move', 90_000, () => Promise.resolve(acknowledged.length >= 2000 ? true : undefined));

  // A fourth broker joins the running cluster: its id is not in the peers list, so it comes
  // in as a broker without a Raft vote.
  cluster.start(4, 'start', ['--listen', `127.0.0.1:${await freePort()}`]);
  await alive(4);
  const dry = await admin.rebalance({ dryRun: true });
  t.ok(dry.moves.length > 0, `the dry run plans ${dry.moves.length} moves`);
  // The same plan through the command line, as a table.
  const cli = await promisify(execFile)(process.execPath, [BIN, 'cluster', 'rebalance', '--dry-run', '--bootstrap', bootstrap.join(',')], { timeout: 30_000 });
  t.match(cli.stdout, /^TOPIC +PARTITION +FROM +TO$/m, 'driftwood cluster rebalance --dry-run prints the plan');
  t.equal(cli.stdout.split('\n').filter((line) => line.startsWith(`${TOPIC} `)).length, dry.moves.length, 'a row per move');
  t.same((await admin.listReassignments()).partitions, [], 'a dry run moves nothing');
  const plan = await admin.rebalance({ dryRun: false, throttleBytesPerSec: THROTTLE_BYTES_PER_SEC });
  t.ok(plan.moves.every((m) => m.to.includes(4) || m.from.includes(4) || m.to.some((id, i) => m.from[i] !== id)), 'every move changes something');
  const during = await admin.listReassignments();
  t.equal(during.throttleBytesPerSec, THROTTLE_BYTES_PER_SEC, 'the throttle is set cluster-wide');
  const adding = during.partitions.flatMap((p) => p.progress.filter((r) => r.role === 'adding'));
  t.ok(adding.length > 0, `in progress: ${during.partitions.length} partitions moving, ${adding.length} replicas being added`);
  t.ok(during.partitions.every((p) => p.leaderLogBytes === null || p.leaderLogBytes > 0), 'the leader reports what there is to copy');
  await waitFor('the rebalance to finish', 120_000, async () => ((await admin.listReassignments()).partitions.length === 0 ? true : undefined));
  await admin.electPreferredLeaders();

  const share = async (): Promise<{ replicas: number[]; leaders: number[] }> => {
    const topic = await admin.describeTopic(TOPIC);
    const replicas = [1, 2, 3, 4].map((id) => topic.partitions.filter((p) => p.replicas.includes(id)).length);
    const leaders = [1, 2, 3, 4].map((id) => topic.partitions.filter((p) => p.leader === id).length);
    return { replicas, leaders };
  };
  const balanced = await waitFor('replicas and leaders spread over 4 brokers', 30_000, async () => {
    const now = await share();
    const even = (counts: number[]): boolean => Math.max(...counts) - Math.min(...counts) <= 1;
    return even(now.replicas) && even(now.leaders) ? now : undefined;
  });
  t.comment(`after the rebalance: replicas per broker ${balanced.replicas.join(',')}, leaders ${balanced.leaders.join(',')}`);

  // Broker 1 leaves.
  const refused = await promisify(execFile)(process.execPath, [BIN, 'brokers', 'decommission', '9', '--dry-run', '--bootstrap', bootstrap.join(',')], { timeout: 30_000 }).then(() => null, (error: unknown) => error as { code: number; stderr: string });
  t.match(refused, { code: 1, stderr: /BROKER_ID_NOT_REGISTERED/ }, 'decommissioning an unknown broker is refused with its code');
  const out = await admin.decommissionBroker(1, { dryRun: false, throttleBytesPerSec: -1 });
  t.ok(out.moves.length > 0 && out.moves.every((m) => !m.to.includes(1)), `${out.moves.length} partitions move off broker 1`);
  await waitFor('broker 1 to hold nothing', 120_000, async () => {
    const topic = await admin.describeTopic(TOPIC);
    return topic.partitions.every((p) => !p.replicas.includes(1) && p.isr.length === 3) ? true : undefined;
  });
  const brokers = await admin.describeCluster();
  t.match(brokers.brokers.find((b) => b.id === 1), { state: 'alive', decommissioned: true }, 'broker 1 still runs, decommissioned; it can be stopped now');
  const listed = await (await fetch(`http://${bootstrap[1]}/v1/brokers`)).json() as Array<{ id: number; decommissioned: boolean; replicas: number }>;
  t.match(listed.find((b) => b.id === 1), { decommissioned: true, replicas: 0 }, 'GET /v1/brokers: broker 1 decommissioned and holding nothing');
  const after = await share();
  t.equal(after.replicas[0], 0, 'broker 1 holds no replica');
  t.same(after.replicas.slice(1), [6, 6, 6], 'the others hold all 18');
  await t.rejects(admin.alterReassignments([{ topic: TOPIC, partition: 0, replicas: [1, 2, 3] }]), { code: 'INVALID_REPLICA_ASSIGNMENT' }, 'a decommissioned broker takes no replica');

  producing.on = false;
  await sending;
  t.same(failures, [], `every one of ${acknowledged.length} sends succeeded through the moves`);
  const stored = await readAll(bootstrap, admin, TOPIC);
  const at = new Map<number, { partition: number; offset: number }>();
  let duplicates = 0;
  for (const [partition, records] of stored) {
    const lastOfKey = new Map<string, number>();
    let disorder = 0;
    for (const record of records) {
      const recordSeq = Number(record.value?.toString().split(':')[0]);
      if (at.has(recordSeq)) duplicates += 1;
      at.set(recordSeq, { partition, offset: record.offset });
      const key = record.key?.toString() ?? '';
      if (recordSeq <= (lastOfKey.get(key) ?? -1)) disorder += 1;
      lastOfKey.set(key, recordSeq);
    }
    t.equal(disorder, 0, `partition ${partition}: each key in send order`);
  }
  t.equal(duplicates, 0, 'no record stored twice');
  const misplaced = acknowledged.filter(({ seq: s, answer }) => at.get(s)?.partition !== answer.partition || at.get(s)?.offset !== answer.offset);
  t.same(misplaced.map(({ seq: s }) => s), [], 'every acknowledged record where it was acknowledged');
});
