import { AssertionError } from 'node:assert';
import t from 'tap';
import { decodeRecords, encodeRecords, type MetadataRecord } from '../../src/controller/records.js';

const samples: MetadataRecord[] = [
  { type: 'RegisterBroker', brokerId: 1, address: 'b1:9092', brokerEpoch: 3, incarnationId: 'x' },
  { type: 'BrokerUnfence', brokerId: 1, brokerEpoch: 3 },
  { type: 'BrokerFence', brokerId: 1, brokerEpoch: 3 },
  { type: 'UnregisterBroker', brokerId: 1, brokerEpoch: 3 },
  { type: 'Topic', name: 'orders', topicId: 't1', configs: { 'retention.ms': 1000, 'cleanup.policy': 'delete' } },
  { type: 'Partition', topicId: 't1', partition: 0, replicas: [1, 2], isr: [1, 2], leader: 1, leaderEpoch: 0, partitionEpoch: 0 },
  { type: 'PartitionChange', topicId: 't1', partition: 0, isr: [1] },
  { type: 'PartitionChange', topicId: 't1', partition: 0, leader: -1 },
  { type: 'TopicConfig', topicId: 't1', configs: {} },
  { type: 'RemoveTopic', topicId: 't1' },
];

void t.test('a batch of every record type round-trips', (t) => {
  t.same(decodeRecords(encodeRecords(samples)), samples);
  t.end();
});

void t.test('a malformed record in the log is a bug: AssertionError', (t) => {
  const bad: unknown[] = [
    'not json',
    {},
    [],
    [null],
    [{ v: 2, type: 'RemoveTopic', topicId: 't' }],
    [{ v: 1, type: 'Nonsense' }],
    [{ v: 1, type: 'RemoveTopic' }],
    [{ v: 1, type: 'RemoveTopic', topicId: 't', extra: 1 }],
    [{ v: 1, type: 'BrokerFence', brokerId: -2, brokerEpoch: 1 }],
    [{ v: 1, type: 'Partition', topicId: 't', partition: 0, replicas: [1, 1], isr: [1], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }],
    [{ v: 1, type: 'Partition', topicId: 't', partition: 0, replicas: [1], isr: [], leader: 1, leaderEpoch: 0, partitionEpoch: 0 }],
    [{ v: 1, type: 'Partition', topicId: 't', partition: 0, replicas: [1], isr: [1], leader: 1, leaderEpoch: 0.5, partitionEpoch: 0 }],
    [{ v: 1, type: 'PartitionChange', topicId: 't', partition: 0 }],
    [{ v: 1, type: 'Topic', name: 'a', topicId: 't', configs: { 'retention.ms': '5' } }],
    [{ v: 1, type: 'Topic', name: 'a', topicId: 't', configs: { 'no.such': 1 } }],
  ];
  for (const value of bad) {
    const bytes = new TextEncoder().encode(typeof value === 'string' ? value : JSON.stringify(value));
    t.throws(() => decodeRecords(bytes), AssertionError, JSON.stringify(value));
  }
  t.throws(() => decodeRecords(new Uint8Array([0xff, 0xfe])), AssertionError, 'not UTF-8');
  t.throws(() => encodeRecords([]), AssertionError, 'an empty batch is not written');
  t.end();
});
