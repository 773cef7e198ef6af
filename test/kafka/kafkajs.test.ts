// An unchanged Kafka client against driftwood's Kafka listener (issue 11): KafkaJS's admin
// client connects to a three-node cluster started with --kafka-listen, negotiates API
// versions, and reads the cluster and a topic's metadata (every broker's Kafka address, the
// controller, each partition's leader, replicas and ISR, as the HTTP API shows them); then
// KafkaJS's idempotent producer (acks=all) writes keyed records, and reading them back over
// HTTP finds each once, at the offset and in the partition KafkaJS was told (its murmur2
// partitioner and ours agree). A consumer outside any group then lists offsets and fetches
// with Kafka's requests sent raw (KafkaJS has no consumer without a group, and groups are not
// served yet) and reads every record back in order.
import t from 'tap';
import { Kafka, logLevel } from 'kafkajs';
import { Admin } from '../../src/client/admin.js';
import { decodeBatch } from '../../storage/record-batch.js';
import { partitionForKey } from '../../src/partitioner.js';
import { readAll } from '../client/helpers.js';
import { kafkaCall, kafkaCluster } from '../helpers/kafka.js';
import { h2Json, waitFor } from '../helpers/processes.js';

interface PartitionView { partition: number; leader: number; replicas: number[]; isr: number[] }

void t.test('KafkaJS admin: cluster and topic metadata through the Kafka listener', { timeout: 120_000 }, async (t) => {
  const { cluster, kafkaPorts, http } = await kafkaCluster(t, 'kafkajs-metadata');
  const created = await h2Json(`${http}/v1/topics`, 'POST', { name: 'orders', partitions: 3, replicationFactor: 3 });
  t.equal(created.status, 201);
  const described = await waitFor('every partition led', 20_000, async () => {
    const topic = (await h2Json(`${http}/v1/topics/orders`)).json as { partitions: PartitionView[] };
    return topic.partitions.every((p) => p.leader > 0) ? topic.partitions : undefined;
  });

  const kafka = new Kafka({ clientId: 'driftwood-test', brokers: [`127.0.0.1:${kafkaPorts[1] ?? 0}`], logLevel: logLevel.NOTHING, retry: { retries: 5 } });
  const admin = kafka.admin();
  await admin.connect();
  t.teardown(() => admin.disconnect());
  const info = await admin.describeCluster();
  t.same(info.brokers.map((b) => [b.nodeId, `${b.host}:${b.port}`]).sort(), [1, 2, 3].map((id) => [id, `127.0.0.1:${kafkaPorts[id - 1] ?? 0}`]), 'every broker with its Kafka address');
  t.ok([1, 2, 3].includes(info.controller ?? -1), `the controller is a broker (${String(info.controller)})`);
  t.type(info.clusterId, 'string');
  const { topics } = await admin.fetchTopicMetadata({ topics: ['orders'] });
  const orders = topics.find((topic) => topic.name === 'orders');
  t.ok(orders !== undefined, 'the topic is there');
  const seen = (orders?.partitions ?? []).map((p) => ({ partition: p.partitionId, leader: p.leader, replicas: p.replicas, isr: p.isr })).sort((a, b) => a.partition - b.partition);
  t.same(seen, described.map((p) => ({ partition: p.partition, leader: p.leader, replicas: p.replicas, isr: p.isr })), 'partitions as the HTTP API shows them');
  await t.rejects(admin.fetchTopicMetadata({ topics: ['missing'] }), /does not host this topic-partition|UNKNOWN_TOPIC_OR_PARTITION/i, 'an unknown topic is UNKNOWN_TOPIC_OR_PARTITION');
  const listed = await admin.listTopics();
  t.ok(listed.includes('orders'), `listTopics: ${listed.join(',')}`);

  const producer = kafka.producer({ idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false });
  await producer.connect();
  t.teardown(() => producer.disconnect());
  const sent: Array<{ key: string; value: string; partition: number; offset: number }> = [];
  for (let round = 0; round < 10; round += 1) {
    const messages = Array.from({ length: 30 }, (_, i) => ({ key: `k${(round * 30 + i) % 17}`, value: `v${round * 30 + i}` }));
    const answers = await producer.send({ topic: 'orders', acks: -1, messages });
    // KafkaJS answers per partition with the batch's base offset; its messages went in order.
    for (const answer of answers) {
      const mine = messages.filter((m) => partitionOf(m.key, 3) === answer.partition);
      mine.forEach((m, i) => { sent.push({ ...m, partition: answer.partition, offset: Number(answer.baseOffset) + i }); });
    }
  }
  t.equal(sent.length, 300, 'every send acknowledged');
  const httpAdmin = new Admin({ bootstrap: [`127.0.0.1:${cluster.ports[0] ?? 0}`] });
  t.teardown(() => httpAdmin.close());
  const stored = await readAll(cluster.ports.map((port) => `127.0.0.1:${port}`), httpAdmin, 'orders');
  const found = new Map<string, { partition: number; offset: number; key: string }>();
  for (const [partition, records] of stored) for (const r of records) found.set(r.value?.toString() ?? '', { partition, offset: r.offset, key: r.key?.toString() ?? '' });
  t.equal([...stored.values()].reduce((n, records) => n + records.length, 0), 300, 'stored once each');
  const wrong = sent.filter((m) => found.get(m.value)?.partition !== m.partition || found.get(m.value)?.offset !== m.offset || found.get(m.value)?.key !== m.key);
  t.same(wrong, [], 'each where KafkaJS was told, with its key');

  // A consumer outside any group, with Kafka's own requests (ListOffsets v5, Fetch v11) sent
  // raw to each partition's leader: what it reads is what was written.
  const kafkaPortOf = (id: number): number => kafkaPorts[id - 1] ?? 0;
  for (const p of described) {
    const offsets = await kafkaCall(kafkaPortOf(p.leader), 2, 5, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'orders', partitions: [{ partitionIndex: p.partition, currentLeaderEpoch: -1, timestamp: -2n }, ] }] });
    const latest = await kafkaCall(kafkaPortOf(p.leader), 2, 5, { replicaId: -1, isolationLevel: 0, topics: [{ name: 'orders', partitions: [{ partitionIndex: p.partition, currentLeaderEpoch: -1, timestamp: -1n }] }] });
    const earliest = (offsets.topics as Array<{ partitions: Array<{ errorCode: number; offset: bigint }> }>)[0]?.partitions[0];
    const end = (latest.topics as Array<{ partitions: Array<{ errorCode: number; offset: bigint }> }>)[0]?.partitions[0];
    t.match(earliest, { errorCode: 0, offset: 0n }, `partition ${p.partition}: earliest 0`);
    const expected = sent.filter((m) => m.partition === p.partition).length;
    t.match(end, { errorCode: 0, offset: BigInt(expected) }, `partition ${p.partition}: latest ${expected}`);
    const fetched = await kafkaCall(kafkaPortOf(p.leader), 1, 11, {
      replicaId: -1, maxWaitMs: 100, minBytes: 1, maxBytes: 1 << 20, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: 'orders', partitions: [{ partition: p.partition, currentLeaderEpoch: -1, fetchOffset: 0n, logStartOffset: -1n, partitionMaxBytes: 1 << 20 }] }],
      forgottenTopicsData: [], rackId: '',
    });
    const answer = (fetched.responses as Array<{ partitions: Array<{ errorCode: number; highWatermark: bigint; records: Buffer | null }> }>)[0]?.partitions[0];
    t.equal(answer?.errorCode, 0);
    t.equal(answer?.highWatermark, BigInt(expected));
    const values: string[] = [];
    const bytes = answer?.records ?? Buffer.alloc(0);
    for (let position = 0; position < bytes.length;) {
      const batch = decodeBatch(bytes, position);
      for (const record of batch.records) values.push(record.value?.toString() ?? '');
      position += batch.header.sizeBytes;
    }
    t.same(values, sent.filter((m) => m.partition === p.partition).sort((a, b) => a.offset - b.offset).map((m) => m.value), `partition ${p.partition}: Fetch returns every record in order`);
  }
  // An offset past the end: OFFSET_OUT_OF_RANGE with the log's bounds, so a client can reset.
  const first = described[0];
  if (first !== undefined) {
    const beyond = await kafkaCall(kafkaPortOf(first.leader), 1, 11, {
      replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: 'orders', partitions: [{ partition: first.partition, currentLeaderEpoch: -1, fetchOffset: 1_000_000n, logStartOffset: -1n, partitionMaxBytes: 1024 }] }],
      forgottenTopicsData: [], rackId: '',
    });
    const expected = BigInt(sent.filter((m) => m.partition === first.partition).length);
    t.match((beyond.responses as Array<{ partitions: Array<{ errorCode: number; highWatermark: bigint; logStartOffset: bigint }> }>)[0]?.partitions[0], { errorCode: 1, highWatermark: expected, logStartOffset: 0n }, 'OFFSET_OUT_OF_RANGE with the log start and high watermark');
  }
  // Metadata v12 by topic id alone (the name null): the topic, or UNKNOWN_TOPIC_ID.
  const byName = await kafkaCall(kafkaPortOf(1), 3, 12, { topics: [{ topicId: Buffer.alloc(16), name: 'orders' }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  const ordersId = (byName.topics as Array<{ topicId: Buffer }>)[0]?.topicId ?? Buffer.alloc(16);
  const byId = await kafkaCall(kafkaPortOf(1), 3, 12, { topics: [{ topicId: ordersId, name: null }, { topicId: Buffer.alloc(16, 7), name: null }], allowAutoTopicCreation: false, includeTopicAuthorizedOperations: false });
  t.match(byId.topics, [{ errorCode: 0, name: 'orders', partitions: { length: 3 } }, { errorCode: 100, name: null }], 'Metadata v12 by topic id: the topic; an unknown id UNKNOWN_TOPIC_ID');
  const notLeader = described.find((p) => p.leader !== 1);
  if (notLeader !== undefined) {
    const refused = await kafkaCall(kafkaPortOf(notLeader.leader === 2 ? 3 : 2), 1, 11, {
      replicaId: -1, maxWaitMs: 0, minBytes: 0, maxBytes: 1024, isolationLevel: 0, sessionId: 0, sessionEpoch: -1,
      topics: [{ topic: 'orders', partitions: [{ partition: notLeader.partition, currentLeaderEpoch: -1, fetchOffset: 0n, logStartOffset: -1n, partitionMaxBytes: 1024 }] }],
      forgottenTopicsData: [], rackId: '',
    });
    t.match((refused.responses as Array<{ partitions: Array<{ errorCode: number }> }>)[0]?.partitions[0], { errorCode: 6 }, 'a fetch from a broker that does not lead: NOT_LEADER_OR_FOLLOWER');
  }
});


/** Kafka's default partitioner for a keyed record (ours matches the vectors of an independent client). */
function partitionOf(key: string, partitions: number): number {
  return partitionForKey(Buffer.from(key), partitions);
}
