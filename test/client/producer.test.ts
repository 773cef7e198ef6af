// The Producer against three real nodes: keyed records land where Kafka's default partitioner
// puts them and keep their order; batching sends far fewer requests than records; null keys
// stick to one partition per batch; acks 0, 1 and all; a full buffer blocks send() for
// maxBlockMs and then rejects; errors that retrying cannot fix reject at once; flush and close.
import t from 'tap';
import { Producer, type RecordMetadata } from '../../src/client/producer.js';
import { partitionForKey } from '../../src/partitioner.js';
import { isDriftwoodError } from '../../storage/errors.js';
import { clientCluster, createServedTopic, readAll } from './helpers.js';

const codeOf = (error: unknown): string => (isDriftwoodError(error) ? error.code : String(error));

void t.test('the producer on three nodes', { timeout: 90_000 }, async (t) => {
  const { bootstrap, admin } = await clientCluster(t, 'client-producer', 3);
  await createServedTopic(admin, 'keyed', 6, 3);

  await t.test('keyed records: Kafka partitions, order per key, batched', async (t) => {
    const producer = new Producer({ bootstrap, idempotent: false, lingerMs: 20 });
    t.teardown(() => producer.close());
    const count = 3000;
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    const sends: Array<Promise<RecordMetadata>> = [];
    for (let i = 0; i < count; i += 1) {
      const key = keys[i % keys.length] as string;
      sends.push(producer.send({ topic: 'keyed', key, value: `${key}:${i}`, headers: { seq: String(i) } }));
    }
    const results = await Promise.all(sends);
    const misplaced = results.filter((r, i) => r.partition !== partitionForKey(Buffer.from(keys[i % keys.length] as string), 6));
    t.same(misplaced, [], 'every record is in the partition murmur2 of its key names');
    const metrics = producer.metrics();
    t.equal(metrics.records, count);
    t.ok(metrics.requests <= count / 20, `${count} records in ${metrics.requests} requests (${metrics.batches} batches)`);

    const read = await readAll(bootstrap, admin, 'keyed');
    let total = 0;
    for (const [partition, records] of read) {
      total += records.length;
      t.same(records.map((r) => r.offset), records.map((_, i) => i), `partition ${partition}: offsets 0..${records.length - 1}`);
      const lastOfKey = new Map<string, number>();
      const disorder = records.filter((r) => {
        const seq = Number(r.headers.find((h) => h.key === 'seq')?.value?.toString());
        const before = lastOfKey.get(r.key?.toString() ?? '') ?? -1;
        lastOfKey.set(r.key?.toString() ?? '', seq);
        return seq <= before;
      });
      t.same(disorder.length, 0, `partition ${partition}: each key's records in send order`);
    }
    t.equal(total, count, 'every record was written once');
    const answered = new Map(results.map((r, i) => [`${r.partition}@${r.offset}`, i]));
    const mismatched = [...read.values()].flat().filter((r) => answered.get(`${r.partition}@${r.offset}`) !== Number(r.value?.toString().split(':')[1]));
    t.same(mismatched.length, 0, 'each send was answered with the offset its record has');
  });

  await t.test('null keys stick to one partition per batch and move on after it is sent', async (t) => {
    const producer = new Producer({ bootstrap, acks: 1, lingerMs: 60_000 });
    t.teardown(() => producer.close());
    const rounds: number[][] = [];
    for (let round = 0; round < 6; round += 1) {
      const sends = Array.from({ length: 30 }, (_, i) => producer.send({ topic: 'keyed', value: `sticky-${round}-${i}` }));
      await producer.flush();
      rounds.push([...new Set((await Promise.all(sends)).map((r) => r.partition))]);
    }
    t.ok(rounds.every((partitions) => partitions.length === 1), `one partition per batch: ${JSON.stringify(rounds)}`);
    t.ok(rounds.every((partitions, i) => i === 0 || partitions[0] !== rounds[i - 1]?.[0]), 'a new partition after each sent batch');

    const small = new Producer({ bootstrap, acks: 1, lingerMs: 60_000, batchBytesMax: 1024 });
    t.teardown(() => small.close());
    const value = 'v'.repeat(100);
    const sends = Array.from({ length: 40 }, () => small.send({ topic: 'keyed', value }));
    await small.flush();
    const partitions = (await Promise.all(sends)).map((r) => r.partition);
    const runs = partitions.filter((p, i) => i === 0 || p !== partitions[i - 1]).length;
    t.ok(runs >= 3, `full batches move the sticky partition on (${runs} runs over ${new Set(partitions).size} partitions)`);
  });

  await t.test('acks 0, 1 and all', async (t) => {
    await createServedTopic(admin, 'acks', 1, 3);
    for (const acks of [0, 1, 'all'] as const) {
      const producer = new Producer({ bootstrap, acks, idempotent: false });
      const answer = await producer.send({ topic: 'acks', value: `acks-${acks}` });
      if (acks === 0) t.equal(answer.offset, -1, 'acks=0: the broker answers before writing, so no offset');
      else t.ok(answer.offset >= 0, `acks=${acks}: offset ${answer.offset}`);
      await producer.close();
    }
    t.throws(() => new Producer({ bootstrap, acks: 1, idempotent: true }), { code: 'INVALID_CONFIG' }, 'idempotence needs acks=all');
    const values = async (): Promise<string[]> => (await readAll(bootstrap, admin, 'acks')).get(0)?.map((r) => r.value?.toString() ?? '') ?? [];
    let seen: string[] = [];
    for (let i = 0; i < 50 && seen.length < 3; i += 1) seen = await values();
    t.same(seen.sort(), ['acks-0', 'acks-1', 'acks-all'], 'all three were written');
  });

  await t.test('a full buffer blocks send() for maxBlockMs, then BUFFER_EXHAUSTED', async (t) => {
    // min.insync.replicas above the replication factor: every produce fails with the retriable NOT_ENOUGH_REPLICAS.
    await createServedTopic(admin, 'stuck', 1, 1, { 'min.insync.replicas': 2 });
    const producer = new Producer({
      bootstrap, idempotent: false, bufferBytesMax: 2048, maxBlockMs: 500, lingerMs: 0,
      requestTimeoutMs: 1000, deliveryTimeoutMs: 3000, retryBackoffMs: 50, retryBackoffMsMax: 200,
    });
    t.teardown(() => producer.close());
    const value = Buffer.alloc(400, 'x');
    const held = Array.from({ length: 4 }, () => producer.send({ topic: 'stuck', value }).then(() => 'written', (error: unknown) => error));
    const started = Date.now();
    const blocked = await producer.send({ topic: 'stuck', value }).then(() => 'written', (error: unknown) => error);
    const blockedMs = Date.now() - started;
    t.equal(codeOf(blocked), 'BUFFER_EXHAUSTED', 'the fifth record does not fit');
    t.ok(blockedMs >= 450 && blockedMs < 2500, `send() waited ${blockedMs} ms (maxBlockMs 500)`);
    const outcomes = await Promise.all(held);
    t.same(outcomes.map(codeOf), Array(4).fill('REQUEST_TIMED_OUT'), 'the buffered records fail after deliveryTimeoutMs');
    t.match(outcomes[0], { hints: { lastError: 'NOT_ENOUGH_REPLICAS' } }, 'naming the error they were retried for');
    t.ok(producer.metrics().retries > 0, `${producer.metrics().retries} retries`);
    const after = await producer.send({ topic: 'keyed', key: 'after', value });
    t.ok(after.offset >= 0, 'with the buffer free again, sends go through');

    const stuck = producer.send({ topic: 'stuck', value }).then(() => 'written', (error: unknown) => error);
    const closeStarted = Date.now();
    await producer.close(300);
    t.ok(Date.now() - closeStarted < 2000, `close(300) gave up on the stuck record after ${Date.now() - closeStarted} ms`);
    t.equal(codeOf(await stuck), 'CLIENT_CLOSED');
  });

  await t.test('errors that retrying cannot fix, flush and close', async (t) => {
    await createServedTopic(admin, 'small', 1, 3, { 'max.message.bytes': 1000 });
    const producer = new Producer({ bootstrap, idempotent: false, maxBlockMs: 300, lingerMs: 60_000 });
    await t.rejects(producer.send({ topic: 'keyed', value: Buffer.alloc(2 * 1024 * 1024) }), { code: 'MESSAGE_TOO_LARGE' }, 'over requestBytesMax: refused before sending');
    const before = producer.metrics().requests;
    const tooLarge = producer.send({ topic: 'small', value: Buffer.alloc(3000) });
    await producer.flush();
    await t.rejects(tooLarge, { code: 'MESSAGE_TOO_LARGE' }, 'over the topic\'s max.message.bytes: the broker refuses');
    t.equal(producer.metrics().requests, before + 1, 'sent once, not retried');
    await t.rejects(producer.send({ topic: 'keyed', partition: 6, value: 'x' }), { code: 'UNKNOWN_TOPIC_OR_PARTITION' }, 'a partition the topic lacks');
    const started = Date.now();
    await t.rejects(producer.send({ topic: 'nonexistent', value: 'x' }), { code: 'UNKNOWN_TOPIC_OR_PARTITION' }, 'a topic that does not appear within maxBlockMs');
    t.ok(Date.now() - started >= 250, 'after waiting for it');

    // lingerMs 60 s: only flush() sends these now.
    const answers: RecordMetadata[] = [];
    const sends = Array.from({ length: 10 }, (_, i) => producer.send({ topic: 'keyed', key: `f${i}`, value: 'x' }).then((r) => { answers.push(r); }));
    const flushStarted = Date.now();
    await producer.flush();
    t.equal(answers.length, 10, 'flush() resolves once every earlier send is answered');
    t.ok(Date.now() - flushStarted < 5000, 'without waiting for lingerMs');
    await Promise.all(sends);
    const last = producer.send({ topic: 'keyed', key: 'last', value: 'x' });
    await producer.close();
    t.ok((await last).offset >= 0, 'close() sends what is buffered first');
    await t.rejects(producer.send({ topic: 'keyed', value: 'x' }), { code: 'CLIENT_CLOSED' });
    await producer.close();
  });
});
