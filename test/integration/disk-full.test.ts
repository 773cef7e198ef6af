// Disk full on one broker of three (issue 9): node 3's partition logs live on a 4 MiB tmpfs
// mounted in a mount namespace of its own (unshare -rm: loopback and the test's own namespace
// only), and the test fills it while an idempotent acks=all producer writes. Node 3 must stay
// up, log why each of its partitions went offline, report them to the controller (so the
// leadership and the ISR move to the other replicas) and show them in /metrics; no send may
// fail for good. When the space comes back, node 3 opens its logs again, catches up and
// rejoins every ISR; afterwards every acknowledged record is stored once at the offset it was
// acknowledged with, and node 3's logs are byte-identical to the leaders' below the high
// watermark.
import { spawn, spawnSync, type ChildProcess } from 'node:child_process';
import { open, rm } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Producer, type RecordMetadata } from '../../src/client/producer.js';
import { readPartitionLog } from '../../src/chaos/node-log-files.js';
import { prefixBelow } from '../../src/chaos/replica-log.js';
import { BIN, killAll, localCluster, waitFor } from '../helpers/processes.js';
import { Admin } from '../../src/client/admin.js';
import { readAll } from '../client/helpers.js';

const TOPIC = 'full';
const PARTITIONS = 3;
const TMPFS_SIZE = '4m';
const VALUE_BYTES = 1024;
const FILLER_CHUNK_BYTES = 64 * 1024;

interface Sent {
  readonly seq: number;
  readonly answer: RecordMetadata;
}

void t.test('disk full on one broker: its partitions go offline, nothing acknowledged is lost, and they come back with the space', { timeout: 180_000 }, async (t) => {
  const probe = spawnSync('unshare', ['-rm', 'true']);
  if (probe.status !== 0) throw new Error(`this test needs 'unshare -rm' (util-linux, user namespaces): ${probe.stderr.toString()}`);

  const cluster = await localCluster(t, 'disk-full');
  const processes = new Set<ChildProcess>();
  t.teardown(() => { killAll(processes); });
  cluster.start(1, 'start');
  cluster.start(2, 'start');
  const dataDir = join(cluster.dir, 'n3');
  const logsDir = join(dataDir, 'logs');
  const output: string[] = [];
  // sh runs in the new namespaces: it mounts the tmpfs over n3/logs and becomes the node.
  const node3 = spawn('unshare', ['-rm', 'sh', '-c', `mkdir -p "$0" && mount -t tmpfs -o size=${TMPFS_SIZE} tmpfs "$0" && exec "$@"`, logsDir,
    process.execPath, BIN, 'start', '--id', '3', '--peers', cluster.peers, '--data', dataDir], { stdio: ['ignore', 'pipe', 'pipe'] });
  processes.add(node3);
  node3.stdout.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  node3.stderr.on('data', (chunk: Buffer) => output.push(chunk.toString()));
  const pid = node3.pid ?? -1;
  // The node's view of its files: its own mount namespace, seen from here through /proc.
  const seenDataDir = `/proc/${pid}/root${dataDir}`;
  const filler = `/proc/${pid}/root${logsDir}/filler`;

  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`);
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  t.teardown(() => admin.close());
  await waitFor('3 alive brokers', 30_000, async () => {
    const { brokers } = await admin.describeCluster();
    return brokers.length === 3 && brokers.every((b) => b.state === 'alive') ? true : undefined;
  });
  await admin.createTopic({ name: TOPIC, partitions: PARTITIONS, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } });
  const served = await waitFor('every partition served with a full ISR', 20_000, async () => {
    const topic = await admin.describeTopic(TOPIC);
    return topic.partitions.every((p) => p.highWatermark !== null && p.isr.length === 3) ? topic : undefined;
  });
  const ledByThree = served.partitions.filter((p) => p.leader === 3).map((p) => p.partition);

  const producer = new Producer({ bootstrap, lingerMs: 5, requestTimeoutMs: 5000, deliveryTimeoutMs: 60_000 });
  t.teardown(() => producer.close());
  const sent: Sent[] = [];
  const failures: string[] = [];
  let seq = 0;
  const sendRound = async (count: number): Promise<void> => {
    await Promise.all(Array.from({ length: count }, () => {
      const mine = seq++;
      const value = `${mine}:`.padEnd(VALUE_BYTES, 'x');
      return producer.send({ topic: TOPIC, key: `k${mine % 12}`, value }).then(
        (answer) => { sent.push({ seq: mine, answer }); },
        (error: unknown) => { failures.push(`${mine}: ${String(error)}`); },
      );
    }));
  };
  await sendRound(300);

  // Fill node 3's disk.
  const file = await open(filler, 'w');
  let filled = 0;
  try {
    for (;;) {
      await file.write(Buffer.alloc(FILLER_CHUNK_BYTES));
      filled += FILLER_CHUNK_BYTES;
    }
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  } finally {
    await file.close();
  }
  t.comment(`filled node 3's tmpfs with ${filled} bytes`);

  for (let round = 0; round < 6; round += 1) await sendRound(200);
  t.same(failures, [], 'every send succeeded while node 3 had no space');
  t.equal(node3.exitCode, null, 'node 3 stays up');
  t.match(output.join(''), /partition offline: its log failed/, 'node 3 logged why');
  t.match(output.join(''), /ENOSPC/, 'and named the cause');
  const offline = await waitFor('node 3 listed as offline', 20_000, async () => {
    const topic = await admin.describeTopic(TOPIC);
    const marked = topic.partitions.filter((p) => p.offlineReplicas.includes(3));
    return marked.length === PARTITIONS ? topic : undefined;
  });
  for (const p of offline.partitions) {
    t.notOk(p.isr.includes(3), `partition ${p.partition}: node 3 left the ISR`);
    t.not(p.leader, 3, `partition ${p.partition}: node 3 does not lead it`);
  }
  t.ok(ledByThree.length > 0, `node 3 led partition(s) ${ledByThree.join(',')} before`);
  const metrics = await (await fetch(`http://127.0.0.1:${cluster.ports[2]}/metrics`)).text();
  t.match(metrics, new RegExp(`^driftwood_offline_replicas\\S* ${PARTITIONS}$`, 'm'), 'node 3 reports its offline replicas');

  // Space comes back.
  await rm(filler);
  await waitFor('node 3 back in every ISR', 60_000, async () => {
    const topic = await admin.describeTopic(TOPIC);
    return topic.partitions.every((p) => p.isr.length === 3 && p.offlineReplicas.length === 0) ? true : undefined;
  });
  t.match(output.join(''), /partition log opened again after a failure/, 'node 3 logged the recovery');
  await sendRound(200);
  t.same(failures, [], 'every send succeeded after the space came back');

  const stored = await readAll(bootstrap, admin, TOPIC);
  const bySeq = new Map<number, { partition: number; offset: number }>();
  let duplicates = 0;
  for (const [partition, records] of stored) {
    for (const record of records) {
      const recordSeq = Number(record.value?.toString().split(':')[0]);
      if (bySeq.has(recordSeq)) duplicates += 1;
      bySeq.set(recordSeq, { partition, offset: record.offset });
    }
  }
  t.equal(duplicates, 0, 'no record stored twice');
  const wrong = sent.filter(({ seq: s, answer }) => bySeq.get(s)?.partition !== answer.partition || bySeq.get(s)?.offset !== answer.offset);
  t.same(wrong.map(({ seq: s }) => s), [], `all ${sent.length} acknowledged records stored where they were acknowledged`);

  // Node 3's copies match the leaders' below the high watermark, byte for byte.
  const topic = await admin.describeTopic(TOPIC);
  for (const p of topic.partitions) {
    const highWatermark = p.highWatermark ?? 0;
    const leaderDir = join(cluster.dir, `n${p.leader}`);
    const leaderPrefix = prefixBelow(await readPartitionLog(leaderDir, TOPIC, topic.id, p.partition), highWatermark);
    const node3Prefix = await waitFor(`node 3's copy of partition ${p.partition}`, 20_000, async () => {
      const prefix = prefixBelow(await readPartitionLog(seenDataDir, TOPIC, topic.id, p.partition), highWatermark);
      return prefix.endOffset >= highWatermark ? prefix : undefined;
    });
    t.equal(leaderPrefix.problem, null);
    t.equal(node3Prefix.problem, null);
    t.ok(node3Prefix.bytes.equals(leaderPrefix.bytes), `partition ${p.partition}: node 3's log equals leader ${p.leader}'s below ${highWatermark}`);
  }
});
