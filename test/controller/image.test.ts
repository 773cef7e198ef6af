import { AssertionError } from 'node:assert';
import t from 'tap';
import type { Entry } from '../../raft/index.js';
import { createTopic, deleteTopic, fenceBroker } from '../../src/controller/commands.js';
import { MetadataImage, type ImageChange } from '../../src/controller/image.js';
import { encodeRecords, type MetadataRecord } from '../../src/controller/records.js';
import { bytesText, replay, TestLog } from './helpers.js';

function entry(index: number, records: MetadataRecord[]): Entry {
  return { index, term: 1, type: 'normal', data: encodeRecords(records) };
}

void t.test('apply builds brokers, topics and partitions', (t) => {
  const log = new TestLog();
  log.addBrokers([3, 1, 2]);
  log.commit(createTopic({ name: 'orders', partitions: 3, replicationFactor: 2, configs: { 'retention.ms': 1000 } }, log.image, [1, 2, 3], 0, 'T1'));
  const image = log.image;
  t.same(image.brokers().map((b) => b.brokerId), [1, 2, 3]);
  t.equal(image.broker(2)?.fenced, false);
  t.equal(image.broker(9), undefined);
  t.same(image.topic('orders'), { name: 'orders', topicId: 'T1', configs: { 'retention.ms': 1000 } });
  t.equal(image.topicById('T1')?.name, 'orders');
  t.same(image.topics().map((x) => x.name), ['orders']);
  t.same(image.partitions('T1')?.map((p) => p.replicas), [[1, 2], [2, 3], [3, 1]]);
  t.equal(image.partition('T1', 1)?.leader, 2);
  t.equal(image.lastAppliedIndex, log.entries.length);
  image.checkInvariants();
  log.commit(deleteTopic('orders', image));
  t.equal(image.topic('orders'), undefined);
  t.equal(image.partitions('T1'), undefined);
  t.end();
});

void t.test('partition epochs follow KRaft: leader epoch on leader change, partition epoch always', (t) => {
  const log = new TestLog();
  log.addBrokers([1, 2, 3]);
  log.commit(createTopic({ name: 'a', partitions: 1, replicationFactor: 3, configs: {} }, log.image, [1, 2, 3], 0, 'TA'));
  log.commit([{ type: 'PartitionChange', topicId: 'TA', partition: 0, isr: [1, 2] }]);
  t.match(log.image.partition('TA', 0), { leader: 1, isr: [1, 2], leaderEpoch: 0, partitionEpoch: 1 });
  log.commit([{ type: 'PartitionChange', topicId: 'TA', partition: 0, leader: 2 }]);
  t.match(log.image.partition('TA', 0), { leader: 2, isr: [1, 2], leaderEpoch: 1, partitionEpoch: 2 });
  log.commit([{ type: 'PartitionChange', topicId: 'TA', partition: 0, leader: 2, isr: [2] }]);
  t.match(log.image.partition('TA', 0), { leader: 2, isr: [2], leaderEpoch: 1, partitionEpoch: 3 });
  t.end();
});

void t.test('records that break an invariant fail an assertion', (t) => {
  const log = new TestLog();
  log.addBrokers([1, 2]);
  log.commit(createTopic({ name: 'a', partitions: 1, replicationFactor: 2, configs: {} }, log.image, [1, 2], 0, 'TA'));
  const base = log.entries.length;
  const bad: [string, MetadataRecord[]][] = [
    ['leader outside ISR', [{ type: 'PartitionChange', topicId: 'TA', partition: 0, isr: [2] }]],
    ['ISR not within replicas', [{ type: 'PartitionChange', topicId: 'TA', partition: 0, isr: [1, 2, 3] }]],
    ['unknown partition', [{ type: 'PartitionChange', topicId: 'TA', partition: 1, leader: 2 }]],
    ['unknown topic', [{ type: 'PartitionChange', topicId: 'TB', partition: 0, leader: 2 }]],
    ['duplicate name', [{ type: 'Topic', name: 'a', topicId: 'TB', configs: {} }]],
    ['duplicate id', [{ type: 'Topic', name: 'b', topicId: 'TA', configs: {} }]],
    ['colliding name', [{ type: 'Topic', name: 'x_y', topicId: 'TB', configs: {} }, { type: 'Topic', name: 'x.y', topicId: 'TC', configs: {} }]],
    ['bad name', [{ type: 'Topic', name: 'a b', topicId: 'TB', configs: {} }]],
    ['partition out of order', [{ type: 'Partition', topicId: 'TA', partition: 5, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }]],
    ['stale broker epoch', [{ type: 'BrokerFence', brokerId: 1, brokerEpoch: 0 }]],
    ['unfence of unfenced', [{ type: 'BrokerUnfence', brokerId: 1, brokerEpoch: log.image.broker(1)!.brokerEpoch }]],
    ['epoch going back', [{ type: 'RegisterBroker', brokerId: 1, address: 'x', brokerEpoch: 1, incarnationId: 'y' }]],
    ['unknown broker', [{ type: 'UnregisterBroker', brokerId: 7, brokerEpoch: 1 }]],
    ['unknown topic removal', [{ type: 'RemoveTopic', topicId: 'TZ' }]],
  ];
  for (const [what, records] of bad) {
    const copy = replay(log.entries);
    t.throws(() => { copy.apply(entry(base + 1, records)); }, AssertionError, what);
  }
  t.throws(() => { log.image.apply(entry(base, [{ type: 'RemoveTopic', topicId: 'TA' }])); }, AssertionError, 'index must increase');
  t.end();
});

void t.test('snapshot and restore are byte-identical and deterministic', (t) => {
  const log = new TestLog();
  log.addBrokers([5, 4, 6]);
  log.commit(createTopic({ name: 'z', partitions: 4, replicationFactor: 2, configs: { 'unclean.leader.election.enable': true, 'retention.ms': 9 } }, log.image, [4, 5, 6], 2, 'TZ'));
  log.commit(createTopic({ name: 'b.c', partitions: 2, replicationFactor: 3, configs: {} }, log.image, [4, 5, 6], 1, 'TB'));
  log.commit(fenceBroker(5, log.image));
  const snapshot = log.image.snapshot();
  const restored = new MetadataImage();
  const changes: ImageChange[] = [];
  restored.onChange((change) => changes.push(change));
  restored.restore(snapshot);
  t.equal(bytesText(restored.snapshot()), bytesText(snapshot));
  t.same(changes, [{ index: log.entries.length, records: null }]);
  t.equal(restored.lastAppliedIndex, log.image.lastAppliedIndex);
  t.same(restored.brokers(), log.image.brokers());
  t.same(restored.topics(), log.image.topics());
  for (const topic of log.image.topics()) t.same(restored.partitions(topic.topicId), log.image.partitions(topic.topicId));
  t.equal(bytesText(replay(log.entries).snapshot()), bytesText(snapshot), 'a replay gives the same bytes');
  // The restored image applies what comes next like the original.
  const next = { index: log.entries.length + 1, term: 2, type: 'normal' as const, data: encodeRecords(deleteTopic('z', log.image)) };
  log.image.apply(next);
  restored.apply(next);
  t.equal(bytesText(restored.snapshot()), bytesText(log.image.snapshot()));
  const empty = new MetadataImage();
  empty.restore(new MetadataImage().snapshot());
  t.equal(empty.lastAppliedIndex, 0);
  t.end();
});

void t.test('onChange hears every entry until removed; empty entries only advance', (t) => {
  const image = new MetadataImage();
  const heard: number[] = [];
  const off = image.onChange((change) => heard.push(change.index));
  image.apply({ index: 1, term: 1, type: 'normal', data: new Uint8Array(0) });
  image.apply(entry(3, [{ type: 'RegisterBroker', brokerId: 1, address: 'a', brokerEpoch: 3, incarnationId: 'i' }]));
  off();
  image.apply(entry(4, [{ type: 'BrokerUnfence', brokerId: 1, brokerEpoch: 3 }]));
  t.same(heard, [1, 3]);
  t.equal(image.lastAppliedIndex, 4);
  t.end();
});
