// A leader dies under load: three real nodes, a producer sending keyed records without pause
// and a consumer reading them, kill -9 of the leader of partition 0 halfway. Every send still
// succeeds (the clients refresh their metadata and retry at the new leader); afterwards every
// acknowledged record is in its partition exactly once (the producer is idempotent), at the
// offset it was acknowledged with, each key's records in send order, and the consumer that
// ran through the kill read them all.
import t from 'tap';
import { Consumer, type ConsumerRecord } from '../../src/client/consumer.js';
import { Producer, type RecordMetadata } from '../../src/client/producer.js';
import { waitFor } from '../helpers/processes.js';
import { clientCluster, createServedTopic, readAll } from './helpers.js';

const TOPIC = 'orders';
const RECORDS = 6000;
const KILL_AFTER = 2000;
const IN_FLIGHT = 50;

void t.test('producer and consumer through kill -9 of a partition leader', { timeout: 120_000 }, async (t) => {
  const { cluster, bootstrap, admin } = await clientCluster(t, 'client-failover', 3);
  await createServedTopic(admin, TOPIC, 3, 3, { 'min.insync.replicas': 2 });
  const victim = (await admin.describeTopic(TOPIC)).partitions[0]!.leader!;

  const consumed: ConsumerRecord[] = [];
  const consumer = new Consumer({ bootstrap, fetchMaxWaitMs: 200, requestTimeoutMs: 3000 });
  t.teardown(() => consumer.close());
  consumer.assign([0, 1, 2].map((partition) => ({ topic: TOPIC, partition })));
  const reading = { on: true };
  const reader = (async () => {
    while (reading.on) consumed.push(...await consumer.poll(100));
  })();

  const producer = new Producer({ bootstrap, lingerMs: 5, requestTimeoutMs: 3000 });
  t.teardown(() => producer.close());
  const answers: RecordMetadata[] = [];
  const failures: string[] = [];
  let killedAt = -1;
  let firstPartitionZeroAfterKill = -1;
  const startedMs = Date.now();
  for (let sent = 0; sent < RECORDS; sent += IN_FLIGHT) {
    if (sent === KILL_AFTER) {
      cluster.nodes.get(victim)?.child.kill('SIGKILL');
      killedAt = Date.now();
    }
    const round = Array.from({ length: IN_FLIGHT }, (_, i) => {
      const seq = sent + i;
      return producer.send({ topic: TOPIC, key: `k${seq % 30}`, value: String(seq) }).then(
        (answer) => {
          answers[seq] = answer;
          if (killedAt >= 0 && answer.partition === 0 && firstPartitionZeroAfterKill < 0) firstPartitionZeroAfterKill = Date.now() - killedAt;
        },
        (error: unknown) => { failures.push(`${seq}: ${String(error)}`); },
      );
    });
    await Promise.all(round);
  }
  t.same(failures, [], 'every send succeeded');
  t.comment(`${RECORDS} records in ${Date.now() - startedMs} ms; partition 0 took writes again ${firstPartitionZeroAfterKill} ms after kill -9 of broker ${victim}`);
  t.ok(firstPartitionZeroAfterKill >= 0, 'partition 0 took writes again after its leader died');
  t.ok(producer.metrics().retries > 0, `the producer retried ${producer.metrics().retries} times`);
  const moved = (await admin.describeTopic(TOPIC)).partitions[0]!;
  t.not(moved.leader, victim, `partition 0 moved to broker ${moved.leader}`);

  const stored = await readAll(bootstrap, admin, TOPIC);
  const bySeq = new Map<number, { partition: number; offset: number }>();
  let duplicates = 0;
  for (const [partition, records] of stored) {
    const lastOfKey = new Map<string, number>();
    let disorder = 0;
    for (const record of records) {
      const seq = Number(record.value?.toString());
      if (bySeq.has(seq)) duplicates += 1;
      bySeq.set(seq, { partition, offset: record.offset });
      const key = record.key?.toString() ?? '';
      if (seq <= (lastOfKey.get(key) ?? -1)) disorder += 1;
      lastOfKey.set(key, seq);
    }
    t.equal(disorder, 0, `partition ${partition}: each key's records in send order`);
  }
  t.equal(duplicates, 0, 'no record stored twice');
  const wrong = answers.map((answer, seq) => ({ answer, at: bySeq.get(seq) })).filter(({ answer, at }) => at === undefined || at.partition !== answer.partition || at.offset !== answer.offset);
  t.same(wrong.slice(0, 5), [], `every acknowledged record is stored at the offset it was acknowledged with (${wrong.length} not)`);

  await waitFor('the consumer to read every record', 20_000, () => Promise.resolve(consumed.length >= RECORDS ? true : undefined));
  reading.on = false;
  await reader;
  const seenByConsumer = new Set(consumed.map((r) => `${r.partition}@${r.offset}`));
  t.equal(seenByConsumer.size, RECORDS, 'the consumer that ran through the kill read every record once');
});
