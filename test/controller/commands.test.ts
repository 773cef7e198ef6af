import t from 'tap';
import {
  ALTER_PARTITIONS_PER_REQUEST_MAX,
  alterPartition,
  alterPartitions,
  alterReplicaStatus,
  alterTopicConfigs,
  createTopic,
  deleteTopic,
  electPreferredLeaders,
  fenceBroker,
  registerBroker,
  unfenceBroker,
  unregisterBroker,
  type AlterPartitionRequest,
} from '../../src/controller/commands.js';
import { MetadataImage } from '../../src/controller/image.js';
import { decodeRecords } from '../../src/controller/records.js';
import { throwsCode, TestLog } from './helpers.js';

function cluster(brokers: number[], configs: Record<string, unknown> = {}): TestLog {
  const log = new TestLog();
  log.addBrokers(brokers);
  log.commit(createTopic({ name: 't', partitions: brokers.length, replicationFactor: 3, configs }, log.image, brokers, 0, 'T'));
  return log;
}

void t.test('createTopic refuses duplicates, collisions and bad input', (t) => {
  const log = cluster([1, 2, 3]);
  let ids = 0;
  const create = (name: string, partitions = 1, replicationFactor = 1, configs: Record<string, unknown> = {}) =>
    createTopic({ name, partitions, replicationFactor, configs }, log.image, [1, 2, 3], 0, `NEW${++ids}`);
  throwsCode(t, () => create('t'), 'TOPIC_ALREADY_EXISTS');
  log.commit(create('a.b'));
  throwsCode(t, () => createTopic({ name: 'a_b', partitions: 1, replicationFactor: 1, configs: {} }, log.image, [1], 0, 'N2'), 'INVALID_TOPIC_EXCEPTION', 'a.b');
  throwsCode(t, () => create('bad name'), 'INVALID_TOPIC_EXCEPTION');
  throwsCode(t, () => create('x', 0), 'INVALID_PARTITIONS');
  throwsCode(t, () => create('x', 1, 4), 'INVALID_REPLICATION_FACTOR');
  throwsCode(t, () => create('x', 1, 1, { 'cleanup.policy': 'compact' }), 'INVALID_CONFIG', 'cleanup.policy');
  log.commit(fenceBroker(3, log.image));
  throwsCode(t, () => create('x', 1, 3), 'INVALID_REPLICATION_FACTOR', '2 available brokers');
  t.end();
});

void t.test('deleteTopic and alterTopicConfigs', (t) => {
  const log = cluster([1, 2, 3]);
  throwsCode(t, () => deleteTopic('nope', log.image), 'UNKNOWN_TOPIC_OR_PARTITION');
  throwsCode(t, () => alterTopicConfigs('nope', {}, log.image), 'UNKNOWN_TOPIC_OR_PARTITION');
  throwsCode(t, () => alterTopicConfigs('t', { 'retention.ms': 'x' }, log.image), 'INVALID_CONFIG');
  log.commit(alterTopicConfigs('t', { 'retention.ms': '60000' }, log.image));
  t.same(log.image.topic('t')?.configs, { 'retention.ms': 60_000 });
  t.same(deleteTopic('t', log.image), [{ type: 'RemoveTopic', topicId: 'T' }]);
  t.end();
});

void t.test('registration: retries keep the epoch, restarts get a higher one and are fenced', (t) => {
  const log = cluster([1, 2, 3]);
  const epoch1 = log.image.broker(1)!.brokerEpoch;
  t.same(registerBroker({ brokerId: 1, address: 'b1:9092', incarnationId: 'inc-1' }, log.image), { records: [], brokerEpoch: epoch1 });
  const restart = registerBroker({ brokerId: 1, address: 'b1:9092', incarnationId: 'inc-1b' }, log.image);
  t.ok(restart.brokerEpoch > epoch1);
  t.same(restart.records.map((r) => r.type).slice(0, 1), ['BrokerFence'], 'the old incarnation is fenced first');
  log.commit(restart.records);
  t.equal(log.image.broker(1)?.fenced, true);
  t.ok(log.image.partitions('T')!.every((p) => p.leader !== 1), 'it leads nothing');
  throwsCode(t, () => unfenceBroker(1, epoch1, log.image), 'STALE_BROKER_EPOCH');
  throwsCode(t, () => unfenceBroker(9, 1, log.image), 'BROKER_ID_NOT_REGISTERED');
  throwsCode(t, () => registerBroker({ brokerId: -1, address: 'x', incarnationId: 'y' }, log.image), 'INVALID_REQUEST');
  log.commit(unfenceBroker(1, restart.brokerEpoch, log.image));
  t.same(unfenceBroker(1, restart.brokerEpoch, log.image), [], 'unfencing twice is a no-op');
  log.image.checkInvariants();
  t.end();
});

void t.test('fencing moves leadership only within the ISR when unclean election is off', (t) => {
  const log = cluster([1, 2, 3, 4]);
  // Partition 0: replicas [1,2,3]; shrink its ISR to [1] so only broker 1 is in sync.
  const p0 = log.image.partition('T', 0)!;
  t.same(p0.replicas, [1, 2, 3]);
  log.commit(alterPartition({ brokerId: 1, brokerEpoch: log.image.broker(1)!.brokerEpoch, topicId: 'T', partition: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1] }, log.image).records);
  log.commit(fenceBroker(1, log.image));
  t.match(log.image.partition('T', 0), { leader: -1, isr: [1], leaderEpoch: 1 }, 'last ISR member: no leader, ISR keeps it');
  for (const p of log.image.partitions('T')!.slice(1)) {
    t.not(p.leader, 1);
    t.notOk(p.isr.includes(1), 'removed from every other ISR');
    t.ok(p.isr.includes(p.leader));
  }
  t.same(fenceBroker(1, log.image), [], 'fencing twice is a no-op');
  log.image.checkInvariants();
  // When it comes back, the leaderless partition it is in sync for elects it.
  log.commit(unfenceBroker(1, log.image.broker(1)!.brokerEpoch, log.image));
  t.match(log.image.partition('T', 0), { leader: 1, isr: [1], leaderEpoch: 2 });
  t.end();
});

void t.test('fencing elects any live replica when unclean election is on', (t) => {
  const log = cluster([1, 2, 3], { 'unclean.leader.election.enable': true });
  log.commit(alterPartition({ brokerId: 1, brokerEpoch: log.image.broker(1)!.brokerEpoch, topicId: 'T', partition: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1] }, log.image).records);
  log.commit(fenceBroker(1, log.image));
  t.match(log.image.partition('T', 0), { leader: 2, isr: [2], leaderEpoch: 1 });
  log.image.checkInvariants();
  t.end();
});

void t.test('unregister fences first', (t) => {
  const log = cluster([1, 2, 3]);
  const records = unregisterBroker(2, log.image);
  t.same([records[0]?.type, records.at(-1)?.type], ['BrokerFence', 'UnregisterBroker']);
  log.commit(records);
  t.equal(log.image.broker(2), undefined);
  log.image.checkInvariants();
  throwsCode(t, () => unregisterBroker(2, log.image), 'BROKER_ID_NOT_REGISTERED');
  t.end();
});

void t.test('alterPartition accepts the leader’s ISR change and refuses the rest', (t) => {
  const log = cluster([1, 2, 3, 4]);
  const epoch = (id: number) => log.image.broker(id)!.brokerEpoch;
  const request = (over: Partial<AlterPartitionRequest> = {}): AlterPartitionRequest =>
    ({ brokerId: 1, brokerEpoch: epoch(1), topicId: 'T', partition: 0, leaderEpoch: 0, partitionEpoch: 0, newIsr: [1, 2], ...over });
  throwsCode(t, () => alterPartition(request({ brokerEpoch: 0 }), log.image), 'STALE_BROKER_EPOCH');
  throwsCode(t, () => alterPartition(request({ brokerId: 9 }), log.image), 'STALE_BROKER_EPOCH');
  throwsCode(t, () => alterPartition(request({ partition: 9 }), log.image), 'UNKNOWN_TOPIC_OR_PARTITION');
  throwsCode(t, () => alterPartition(request({ brokerId: 2, brokerEpoch: epoch(2) }), log.image), 'NOT_LEADER_OR_FOLLOWER');
  throwsCode(t, () => alterPartition(request({ leaderEpoch: 1 }), log.image), 'FENCED_LEADER_EPOCH');
  throwsCode(t, () => alterPartition(request({ partitionEpoch: 3 }), log.image), 'INVALID_UPDATE_VERSION');
  throwsCode(t, () => alterPartition(request({ newIsr: [1, 4] }), log.image), 'INVALID_REQUEST', 'not a set');
  throwsCode(t, () => alterPartition(request({ newIsr: [1, 1] }), log.image), 'INVALID_REQUEST');
  throwsCode(t, () => alterPartition(request({ newIsr: [] }), log.image), 'INVALID_REQUEST');
  throwsCode(t, () => alterPartition(request({ newIsr: [2, 3] }), log.image), 'INVALID_REQUEST', 'lacks the leader');
  const shrink = alterPartition(request(), log.image);
  t.match(shrink.partition, { isr: [1, 2], leaderEpoch: 0, partitionEpoch: 1 });
  log.commit(shrink.records);
  t.same(log.image.partition('T', 0), shrink.partition);
  throwsCode(t, () => alterPartition(request(), log.image), 'INVALID_UPDATE_VERSION', 'partition epoch 0');
  t.same(alterPartition(request({ partitionEpoch: 1 }), log.image).records, [], 'no change, no record');
  log.commit(fenceBroker(3, log.image));
  throwsCode(t, () => alterPartition(request({ partitionEpoch: 1, newIsr: [1, 2, 3] }), log.image), 'INELIGIBLE_REPLICA');
  t.end();
});

void t.test('preferred leaders return when healthy', (t) => {
  const log = cluster([1, 2, 3]);
  log.commit(fenceBroker(1, log.image));
  log.commit(unfenceBroker(1, log.image.broker(1)!.brokerEpoch, log.image));
  const led = () => log.image.partitions('T')!.map((p) => p.leader);
  t.notOk(led().includes(1));
  // Broker 1 left the ISRs when fenced; its leaders add it back once it catches up.
  for (const p of log.image.partitions('T')!) {
    const isr = [...p.isr, 1];
    log.commit(alterPartition({ brokerId: p.leader, brokerEpoch: log.image.broker(p.leader)!.brokerEpoch, topicId: 'T', partition: p.partition, leaderEpoch: p.leaderEpoch, partitionEpoch: p.partitionEpoch, newIsr: isr }, log.image).records);
  }
  log.commit(electPreferredLeaders(log.image));
  t.same(led(), log.image.partitions('T')!.map((p) => p.replicas[0]));
  t.same(electPreferredLeaders(log.image), []);
  log.image.checkInvariants();
  t.end();
});

void t.test('alterPartitions decides each partition on its own, as one set of records', (t) => {
  const log = cluster([1, 2, 3, 4]);
  const leader = log.image.partition('T', 0)!.leader;
  const led = (log.image.partitions('T') ?? []).filter((p) => p.leader === leader);
  const other = (log.image.partitions('T') ?? []).find((p) => p.leader !== leader)!;
  const shrink = (p: { partition: number; isr: readonly number[] }) => ({ topicId: 'T', partition: p.partition, leaderEpoch: 0, partitionEpoch: 0, newIsr: p.isr.slice(0, 2).includes(leader) ? p.isr.slice(0, 2) : [leader, ...p.isr.filter((id) => id !== leader).slice(0, 1)] });
  const request = { brokerId: leader, brokerEpoch: log.image.broker(leader)!.brokerEpoch, partitions: [...led.map(shrink), shrink(other)] };
  const { records, answers } = alterPartitions(request, log.image);
  t.equal(records.length, led.length, 'a record per changed partition');
  t.same(answers.slice(0, led.length).map((a) => 'state' in a && a.state.isr.length), led.map(() => 2), 'the led partitions shrink');
  t.match(answers.at(-1), { refused: { error: 'NOT_LEADER_OR_FOLLOWER' } }, 'a partition it does not lead is refused alone');
  log.commit(records);
  t.same(led.map((p) => log.image.partition('T', p.partition)!.isr.length), led.map(() => 2));
  t.match(alterPartitions(request, log.image).answers[0], { refused: { error: 'INVALID_UPDATE_VERSION' } }, 'sent again: stale');
  throwsCode(t, () => alterPartitions({ ...request, partitions: [shrink(led[0]!), shrink(led[0]!)] }, log.image), 'INVALID_REQUEST', 'twice');
  const many = Array.from({ length: ALTER_PARTITIONS_PER_REQUEST_MAX + 1 }, (_, i) => ({ ...shrink(led[0]!), partition: i }));
  throwsCode(t, () => alterPartitions({ ...request, partitions: many }, log.image), 'INVALID_REQUEST', 'over');
  t.end();
});

void t.test('alterReplicaStatus: an offline replica leaves the ISR and leadership, is not elected or taken back, and returns when reported online', (t) => {
  const log = cluster([1, 2, 3]);
  const epoch = (id: number): number => log.image.broker(id)!.brokerEpoch;
  const p0 = (): ReturnType<typeof log.image.partition> => log.image.partition('T', 0);
  const leader = p0()!.leader;
  const others = p0()!.replicas.filter((id) => id !== leader);
  throwsCode(t, () => alterReplicaStatus({ brokerId: leader, brokerEpoch: epoch(leader) + 1, offline: [{ topicId: 'T', partition: 0 }], online: [] }, log.image), 'STALE_BROKER_EPOCH');
  throwsCode(t, () => alterReplicaStatus({ brokerId: leader, brokerEpoch: epoch(leader), offline: [{ topicId: 'T', partition: 0 }], online: [{ topicId: 'T', partition: 0 }] }, log.image), 'INVALID_REQUEST', 'twice');
  const tooMany = Array.from({ length: ALTER_PARTITIONS_PER_REQUEST_MAX + 1 }, (_, partition) => ({ topicId: 'T', partition }));
  throwsCode(t, () => alterReplicaStatus({ brokerId: leader, brokerEpoch: epoch(leader), offline: tooMany, online: [] }, log.image), 'INVALID_REQUEST');
  t.same(alterReplicaStatus({ brokerId: leader, brokerEpoch: epoch(leader), offline: [{ topicId: 'gone', partition: 0 }, { topicId: 'T', partition: 99 }], online: [] }, log.image), [], 'unknown partitions are skipped');

  log.commit(alterReplicaStatus({ brokerId: leader, brokerEpoch: epoch(leader), offline: [{ topicId: 'T', partition: 0 }], online: [] }, log.image));
  t.same(p0()!.offlineReplicas, [leader]);
  t.notOk(p0()!.isr.includes(leader), 'out of the ISR');
  t.ok(others.includes(p0()!.leader), 'another ISR member leads');
  t.same(alterReplicaStatus({ brokerId: leader, brokerEpoch: epoch(leader), offline: [{ topicId: 'T', partition: 0 }], online: [] }, log.image), [], 'reporting it again changes nothing');
  const expand = { brokerId: p0()!.leader, brokerEpoch: epoch(p0()!.leader), topicId: 'T', partition: 0, leaderEpoch: p0()!.leaderEpoch, partitionEpoch: p0()!.partitionEpoch, newIsr: [...p0()!.isr, leader] };
  throwsCode(t, () => alterPartition(expand, log.image), 'INELIGIBLE_REPLICA', 'offline');
  t.same(electPreferredLeaders(log.image), [], 'the preferred replica is offline: not elected back');

  // The other two fail too: the last ISR member stays in the ISR, the partition has no leader.
  for (const id of others) log.commit(alterReplicaStatus({ brokerId: id, brokerEpoch: epoch(id), offline: [{ topicId: 'T', partition: 0 }], online: [] }, log.image));
  t.equal(p0()!.leader, -1);
  t.equal(p0()!.isr.length, 1);
  t.same([...p0()!.offlineReplicas!].sort(), [1, 2, 3]);
  const last = p0()!.isr[0]!;
  for (const id of [1, 2, 3]) log.commit(fenceBroker(id, log.image));
  log.commit(unfenceBroker(last, epoch(last), log.image));
  t.equal(p0()!.leader, -1, 'unfencing does not elect an offline replica');

  log.commit(alterReplicaStatus({ brokerId: last, brokerEpoch: epoch(last), offline: [], online: [{ topicId: 'T', partition: 0 }] }, log.image));
  t.equal(p0()!.leader, last, 'reported online: elected again');
  t.notOk(p0()!.offlineReplicas!.includes(last));
  t.same(alterReplicaStatus({ brokerId: last, brokerEpoch: epoch(last), offline: [], online: [{ topicId: 'T', partition: 0 }] }, log.image), [], 'reporting online again changes nothing');
  for (const id of [1, 2, 3].filter((id) => id !== last)) log.commit(alterReplicaStatus({ brokerId: id, brokerEpoch: epoch(id), offline: [], online: [{ topicId: 'T', partition: 0 }] }, log.image));
  t.equal(p0()!.offlineReplicas, undefined, 'an empty offline set is not kept');
  t.end();
});

void t.test('the Kafka address: a changed one is a new registration; it survives a snapshot; records without it decode', (t) => {
  const log = cluster([1, 2, 3]);
  t.equal(log.image.broker(1)?.kafkaAddress, undefined, 'registered without a Kafka listener');
  const epoch1 = log.image.broker(1)!.brokerEpoch;
  const added = registerBroker({ brokerId: 1, address: 'b1:9092', kafkaAddress: 'k1:19092', incarnationId: 'inc-1' }, log.image);
  t.ok(added.brokerEpoch > epoch1, 'same incarnation, new Kafka address: a new epoch');
  t.same([added.records[0]?.type, added.records.at(-1)?.type], ['BrokerFence', 'RegisterBroker'], 'fenced first, as a restart is');
  log.commit(added.records);
  t.match(log.image.broker(1), { kafkaAddress: 'k1:19092', brokerEpoch: added.brokerEpoch, fenced: true });
  t.same(registerBroker({ brokerId: 1, address: 'b1:9092', kafkaAddress: 'k1:19092', incarnationId: 'inc-1' }, log.image), { records: [], brokerEpoch: added.brokerEpoch }, 'a retry with the same addresses keeps its epoch');
  const moved = registerBroker({ brokerId: 1, address: 'b1:9092', kafkaAddress: 'k1:29092', incarnationId: 'inc-1' }, log.image);
  t.ok(moved.brokerEpoch > added.brokerEpoch);
  log.commit(moved.records);
  t.equal(log.image.broker(1)?.kafkaAddress, 'k1:29092');
  const dropped = registerBroker({ brokerId: 1, address: 'b1:9092', incarnationId: 'inc-1' }, log.image);
  t.ok(dropped.records.length > 0, 'dropping the listener is a new registration too');
  log.commit(dropped.records);
  t.equal(log.image.broker(1)?.kafkaAddress, undefined);
  log.commit(registerBroker({ brokerId: 2, address: 'b2:9092', kafkaAddress: 'k2:19092', incarnationId: 'inc-2b' }, log.image).records);
  throwsCode(t, () => registerBroker({ brokerId: 3, address: 'b3:9092', kafkaAddress: '', incarnationId: 'inc-3' }, log.image), 'INVALID_REQUEST');
  const restored = new MetadataImage();
  restored.restore(log.image.snapshot());
  t.equal(restored.broker(2)?.kafkaAddress, 'k2:19092', 'the snapshot keeps it');
  t.equal(restored.broker(1)?.kafkaAddress, undefined);
  t.notOk(Object.hasOwn(restored.broker(1)!, 'kafkaAddress'), 'absent, not undefined: snapshots stay byte-identical to before');
  // A record written before brokers had a Kafka listener.
  const old = new TextEncoder().encode(JSON.stringify([{ v: 1, type: 'RegisterBroker', brokerId: 7, address: 'b7:9092', brokerEpoch: 3, incarnationId: 'x' }]));
  t.same(decodeRecords(old), [{ type: 'RegisterBroker', brokerId: 7, address: 'b7:9092', brokerEpoch: 3, incarnationId: 'x' }]);
  const bad = new TextEncoder().encode(JSON.stringify([{ v: 1, type: 'RegisterBroker', brokerId: 7, address: 'b7:9092', kafkaAddress: '', brokerEpoch: 3, incarnationId: 'x' }]));
  t.throws(() => decodeRecords(bad), /bad kafkaAddress/);
  log.image.checkInvariants();
  t.end();
});
