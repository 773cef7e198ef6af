// The replica manager follows the metadata image: it opens a log for every partition that
// names this broker, plays the role the image gives, and removes the log of a deleted topic.
import t from 'tap';
import { VirtualClock } from '../../sim/clock.js';
import { SimDisk } from '../../sim/disk.js';
import { alterReplicaStatus, createTopic, deleteTopic, fenceBroker } from '../../src/controller/commands.js';
import { ReplicaManager, defaultReplicaManagerConfig, type ReplicaManagerPorts, logConfigFor, parsePartitionDir, partitionDir } from '../../src/replica/replica-manager.js';
import { alterReassignments } from '../../src/controller/reassignment.js';
import { DriftwoodError } from '../../storage/errors.js';
import { makeBatch } from '../helpers/log.js';
import { TestLog } from '../controller/helpers.js';

/**
 * Broker 1 with no network and no controller, unless a test brings its own: fetches time out
 * (the fetchers retry in the background) and controller requests are refused.
 */
function isolatedBroker(ports: Pick<ReplicaManagerPorts, 'clock' | 'disk' | 'image' | 'mayTakeRoles' | 'onFatal'> & Partial<ReplicaManagerPorts>): ReplicaManagerPorts {
  return {
    brokerId: 1,
    channel: { fetch: () => Promise.reject(new DriftwoodError('REQUEST_TIMED_OUT', 'no network in this test')) },
    alterPartitions: () => Promise.reject(new DriftwoodError('NOT_CONTROLLER', 'no controller in this test')),
    reportReplicaStatus: () => Promise.reject(new DriftwoodError('NOT_CONTROLLER', 'no controller in this test')),
    ...ports,
  };
}

void t.test('hosts its replicas, follows leadership changes, removes deleted topics', async (t) => {
  const log = new TestLog();
  log.addBrokers([1, 2, 3]);
  const disk = new SimDisk();
  const clock = new VirtualClock();
  const fatal: unknown[] = [];
  const manager = new ReplicaManager(defaultReplicaManagerConfig, isolatedBroker({
    clock,
    disk,
    image: log.image,
    mayTakeRoles: () => caughtUp,
    onFatal: (error) => { fatal.push(error); },
  }));
  let caughtUp = false;
  await manager.start();
  log.commit(createTopic({ name: 'orders', partitions: 3, replicationFactor: 2, configs: { 'segment.bytes': 5000 } }, log.image, [1, 2, 3], 0, 'TOPICID0000000000000000'));
  await manager.reconcile();
  t.equal(manager.hostedCount, 0, 'nothing is hosted before the broker has caught up (registered and unfenced)');
  caughtUp = true;
  await manager.reconcile();
  const topic = log.image.topic('orders');
  if (topic === undefined) throw new Error('no topic');
  const mine = (log.image.partitions(topic.topicId) ?? []).filter((p) => p.replicas.includes(1));
  t.equal(manager.hostedCount, mine.length, 'one replica per partition naming broker 1');
  const led = mine.find((p) => p.leader === 1);
  if (led === undefined) throw new Error('broker 1 leads nothing');
  const replica = manager.partition(topic.topicId, led.partition);
  t.ok(replica?.isLeader);
  await replica?.appendAsLeader(makeBatch('a', 2), 1, 1, 1000);
  t.same(manager.leaderOffsets(topic.topicId).find((o) => o.partition === led.partition), { partition: led.partition, logStartOffset: 0, logEndOffset: 2, highWatermark: led.isr.length === 1 ? 2 : 0 });
  t.equal(logConfigFor(topic).segmentBytesMax, 5000, 'topic configs reach the log');
  t.ok(await disk.exists(`${partitionDir(topic, led.partition)}/00000000000000000000.log`), 'the log lives in its partition directory');

  log.commit(fenceBroker(1, log.image));
  await manager.reconcile();
  t.notOk(manager.partition(topic.topicId, led.partition)?.isLeader, 'fenced: leadership moved away');
  t.same(manager.leaderOffsets(topic.topicId), []);

  log.commit(deleteTopic('orders', log.image));
  await manager.reconcile();
  t.equal(manager.hostedCount, 0);
  t.notOk(await disk.exists(`${partitionDir(topic, led.partition)}/00000000000000000000.log`), 'a deleted topic leaves no files');
  await manager.close();
  t.same(fatal, []);
});

void t.test('high watermarks survive a restart through the checkpoint file', async (t) => {
  const log = new TestLog();
  log.addBrokers([1]);
  const disk = new SimDisk();
  const clock = new VirtualClock();
  const make = (): ReplicaManager => new ReplicaManager(defaultReplicaManagerConfig, isolatedBroker({
    clock,
    disk,
    image: log.image,
    mayTakeRoles: () => true,
    onFatal: (error) => { t.fail(String(error)); },
  }));
  const first = make();
  await first.start();
  log.commit(createTopic({ name: 'solo', partitions: 1, replicationFactor: 1, configs: {} }, log.image, [1], 0, 'TOPICID1111111111111111'));
  await first.reconcile();
  await first.produce('solo', 0, makeBatch('a', 3), 1, 1000);
  await first.close();
  const second = make();
  await second.start();
  t.equal(second.leaderFor('solo', 0).replica.highWatermark, 3, 'the high watermark is back, not 0');
  await second.close();
});

void t.test('a produce that arrives while this broker is still taking the leadership its image names waits for it', async (t) => {
  const log = new TestLog();
  log.addBrokers([1]);
  const clock = new VirtualClock();
  const manager = new ReplicaManager(defaultReplicaManagerConfig, isolatedBroker({
    clock,
    disk: new SimDisk(),
    image: log.image,
    mayTakeRoles: () => true,
    onFatal: (error) => { t.fail(String(error)); },
  }));
  await manager.start();
  // The image changes (the manager starts reconciling) and the produce comes before the log is open.
  log.commit(createTopic({ name: 'fresh', partitions: 1, replicationFactor: 1, configs: {} }, log.image, [1], 0, 'TOPICID2222222222222222'));
  t.throws(() => manager.leaderFor('fresh', 0), { code: 'NOT_LEADER_OR_FOLLOWER' }, 'not leader yet');
  const answer = await manager.produce('fresh', 0, makeBatch('a', 2), 1, 1000);
  t.equal(answer.baseOffset, 0, 'the produce waited for the role instead of failing');
  await t.rejects(manager.produce('absent', 0, makeBatch('b', 1), 1, 1000), { code: 'UNKNOWN_TOPIC_OR_PARTITION' });
  await manager.close();
});

void t.test('a log that fails (disk full) takes its partition offline, the broker stays up, and it comes back when the disk does', async (t) => {
  const log = new TestLog();
  log.addBrokers([1]);
  const disk = new SimDisk();
  const clock = new VirtualClock();
  const reports: Array<{ offline: number; online: number }> = [];
  const manager = new ReplicaManager(defaultReplicaManagerConfig, isolatedBroker({
    clock,
    disk,
    image: log.image,
    reportReplicaStatus: (report) => {
      reports.push({ offline: report.offline.length, online: report.online.length });
      const brokerEpoch = log.image.broker(1)?.brokerEpoch ?? -1;
      log.commit(alterReplicaStatus({ brokerId: 1, brokerEpoch, ...report }, log.image));
      return Promise.resolve();
    },
    mayTakeRoles: () => true,
    onFatal: (error) => { t.fail(String(error)); },
  }));
  const settle = async (): Promise<void> => {
    for (let i = 0; i < 20; i += 1) await new Promise<void>((resolve) => { setImmediate(resolve); });
    await manager.reconcile();
  };
  await manager.start();
  log.commit(createTopic({ name: 'solo', partitions: 1, replicationFactor: 1, configs: { 'flush.ms': 0 } }, log.image, [1], 0, 'TOPICID1111111111111111'));
  await manager.reconcile();
  await manager.produce('solo', 0, makeBatch('a', 3), -1, 1000);

  disk.failNextOp('ENOSPC');
  await t.rejects(manager.produce('solo', 0, makeBatch('b', 2), -1, 1000), { code: 'KAFKA_STORAGE_ERROR' });
  await settle();
  t.throws(() => manager.leaderFor('solo', 0), { code: 'KAFKA_STORAGE_ERROR', message: /offline on broker 1: .*ENOSPC/ }, 'clients are told the partition is offline here');
  t.match(manager.offlinePartitions(), [{ partition: 0, error: /ENOSPC/ }]);
  t.equal(manager.stats.logFailures, 1);
  const offline = log.image.partition('TOPICID1111111111111111', 0);
  t.same(offline?.offlineReplicas, [1], 'the controller was told');
  t.equal(offline?.leader, -1, 'its only replica is offline: no leader (the ISR keeps it, as it never empties)');
  t.same(offline?.isr, [1]);

  clock.advance(defaultReplicaManagerConfig.offlineRetryMs);
  await settle();
  await settle();
  t.same(manager.offlinePartitions(), [], 'the log opened again');
  const back = log.image.partition('TOPICID1111111111111111', 0);
  t.equal(back?.offlineReplicas, undefined, 'reported online');
  t.equal(back?.leader, 1, 'and elected again');
  t.same(reports, [{ offline: 1, online: 0 }, { offline: 0, online: 1 }]);
  const appended = await manager.produce('solo', 0, makeBatch('c', 1), -1, 1000);
  t.equal(appended.baseOffset, 3, 'offsets go on after the three acknowledged records; the failed append left nothing');
  const read = await manager.consume('solo', 0, 0, { maxWaitMs: 0, minBytes: 1, bytesMax: 1 << 20 });
  t.equal(read.nextOffset, 4);
  await manager.close();
});

void t.test('a log cut at open is logged, and a checkpointed high watermark above the cut is clamped to it', async (t) => {
  const log = new TestLog();
  log.addBrokers([1]);
  const disk = new SimDisk();
  const clock = new VirtualClock();
  const lines: Array<{ level: string; fields: Readonly<Record<string, unknown>>; message: string }> = [];
  const record = (level: string) => (fields: Readonly<Record<string, unknown>>, message: string): void => { lines.push({ level, fields, message }); };
  const make = (): ReplicaManager => new ReplicaManager(defaultReplicaManagerConfig, isolatedBroker({
    clock,
    disk,
    image: log.image,
    mayTakeRoles: () => true,
    onFatal: (error) => { t.fail(String(error)); },
    log: { debug: record('debug'), info: record('info'), warn: record('warn'), error: record('error') },
  }));
  const first = make();
  await first.start();
  log.commit(createTopic({ name: 'solo', partitions: 1, replicationFactor: 1, configs: {} }, log.image, [1], 0, 'TOPICID2222222222222222'));
  await first.reconcile();
  for (const tag of ['a', 'b', 'c']) await first.produce('solo', 0, makeBatch(tag, 3), 1, 1000);
  t.equal(first.leaderFor('solo', 0).replica.highWatermark, 9);
  await first.close();
  const topic = log.image.topic('solo');
  if (topic === undefined) throw new Error('no topic');
  // A bit flip in the second batch of the only (active) segment.
  const path = `${partitionDir(topic, 0)}/00000000000000000000.log`;
  const file = await disk.open(path, { create: false });
  const secondBatch = (await file.read(0, file.sizeBytes)).readInt32BE(8) + 12;
  await file.write(secondBatch + 70, [Buffer.from([0xee])]);
  await file.sync();
  await file.close();
  t.same(lines.filter((line) => line.message.includes('truncated at open')), [], 'nothing was cut at the first open');
  const second = make();
  await second.start();
  const cut = lines.filter((line) => line.message.includes('truncated at open'));
  t.equal(cut.length, 1);
  t.equal(cut[0]?.level, 'warn', 'a torn tail of the active segment is a warning');
  t.match(cut[0]?.fields, { topic: 'solo', partition: 0, kind: 'active-tail', file: '00000000000000000000.log', damagedAtOffset: 3, damagedAtByte: secondBatch, logEndOffset: 3, segmentsRemoved: 0 });
  const replica = second.leaderFor('solo', 0).replica;
  t.equal(replica.log.logEndOffset, 3);
  t.equal(replica.highWatermark, 3, 'the checkpointed 9 is clamped to the cut log end');
  await second.produce('solo', 0, makeBatch('d', 2), 1, 1000);
  t.equal(replica.log.logEndOffset, 5, 'the sole replica goes on from the cut');
  await second.close();
});

// Sim seed 3 (`driftwood sim cluster --seed 3 --faults all,reassign`, before the fix): a
// broker that was down while a reassignment moved its replica away never deleted the
// replica's directory: its image, replayed and caught up, no longer named the partition, so
// no change ever told it to. The first pass after registering removes such stray directories.
void t.test('a replica moved away while the broker was down is deleted once it has caught up', async (t) => {
  const log = new TestLog();
  log.addBrokers([1, 2, 3]);
  const disk = new SimDisk();
  const clock = new VirtualClock();
  let caughtUp = true;
  const make = (): ReplicaManager => new ReplicaManager(defaultReplicaManagerConfig, isolatedBroker({
    clock,
    disk,
    image: log.image,
    mayTakeRoles: () => caughtUp,
    onFatal: (error) => { t.fail(String(error)); },
  }));
  const first = make();
  await first.start();
  log.commit(createTopic({ name: 'moving', partitions: 2, replicationFactor: 3, configs: {} }, log.image, [1, 2, 3], 0, 'TOPICID2222222222222222'));
  await first.reconcile();
  const topic = log.image.topic('moving');
  if (topic === undefined) throw new Error('no topic');
  t.equal(first.hostedCount, 2);
  await first.produce('moving', log.image.partition(topic.topicId, 0)?.leader === 1 ? 0 : 1, makeBatch('a', 1), 1, 1000).catch(() => undefined);
  await first.close();
  // While broker 1 is down, partition 0 shrinks to [2, 3] (every target replica is in sync: it completes at once).
  log.commit(alterReassignments([{ topicId: topic.topicId, partition: 0, replicas: [2, 3] }], log.image));
  t.same(log.image.partition(topic.topicId, 0)?.replicas, [2, 3]);
  const movedDir = partitionDir(topic, 0);
  t.same(parsePartitionDir(movedDir), { topicId: topic.topicId, partition: 0 });
  t.equal(parsePartitionDir('high-watermark-checkpoint'), null);
  caughtUp = false;
  const second = make();
  await second.start();
  t.ok((await disk.list('.')).includes(movedDir), 'kept until the broker has caught up: its image may still lag');
  caughtUp = true;
  await second.reconcile();
  const names = await disk.list('.');
  t.notOk(names.includes(movedDir), 'the moved replica\'s directory is gone');
  t.ok(names.includes(partitionDir(topic, 1)), 'the replica it still hosts stays');
  t.equal(second.hostedCount, 1);
  await second.close();
});

void t.test('waitForAny: a Kafka fetch waits for the first of its partitions to get records, and leaves no waiter behind', async (t) => {
  const log = new TestLog();
  log.addBrokers([1]);
  const clock = new VirtualClock();
  const manager = new ReplicaManager(defaultReplicaManagerConfig, isolatedBroker({ clock, disk: new SimDisk(), image: log.image, mayTakeRoles: () => true, onFatal: (error) => { t.fail(String(error)); } }));
  await manager.start();
  log.commit(createTopic({ name: 'pair', partitions: 2, replicationFactor: 1, configs: {} }, log.image, [1], 0, 'TOPICID3333333333333333'));
  await manager.reconcile();
  const listeners = (partition: number): number => (manager.leaderFor('pair', partition).replica as unknown as { changeListeners: Set<unknown> }).changeListeners.size;
  const before: [number, number] = [listeners(0), listeners(1)];
  const timersBefore = clock.pendingTimers;

  let woke = false;
  const waiting = manager.waitForAny([{ topic: 'pair', partition: 0, offset: 0 }, { topic: 'pair', partition: 1, offset: 0 }], 5000).then(() => { woke = true; });
  t.same([listeners(0), listeners(1)], [before[0] + 1, before[1] + 1], 'one listener per partition while it waits');
  t.equal(clock.pendingTimers, timersBefore + 1, 'and one timer');
  await manager.produce('pair', 1, makeBatch('x', 2), 1, 1000);
  await waiting;
  t.ok(woke, 'records on one partition end the wait');
  t.same([listeners(0), listeners(1)], before, 'no listener left on either partition, the quiet one included');

  await manager.waitForAny([{ topic: 'pair', partition: 1, offset: 0 }], 5000);
  t.pass('records already past the offset: no wait');
  await manager.waitForAny([{ topic: 'pair', partition: 7, offset: 0 }], 5000);
  t.pass('a partition that cannot be read here: no wait (the fetch answers its error at once)');
  const quiet = manager.waitForAny([{ topic: 'pair', partition: 0, offset: 0 }], 300);
  clock.advance(300);
  await quiet;
  t.same([listeners(0), listeners(1)], before, 'a wait that times out leaves nothing either');
  await manager.close();
});
