// The idempotent producer (the default) on three real nodes. A follower stopped with SIGSTOP
// holds acks=all writes until the controller fences it (about 1 s); with requestTimeoutMs
// 300 the leader answers REQUEST_TIMED_OUT first and the producer retries batches that were
// written. The idempotent producer's retries are answered with the original offsets; the
// same run with idempotence off writes duplicates (so the check can fail). The stored batches
// carry one producer id and consecutive sequences. After the topic is deleted and created
// again, the partition has no state for the producer: the next send fails with that error,
// the producer takes a new id, and later sends go through.
import t from 'tap';
import { Client } from 'undici';
import { Producer } from '../../src/client/producer.js';
import { readBatchHeader, type BatchHeader } from '../../storage/record-batch.js';
import { waitFor } from '../helpers/processes.js';
import { clientCluster, createServedTopic, readAll, sleep } from './helpers.js';

void t.test('the idempotent producer across retries and resets', { timeout: 90_000 }, async (t) => {
  const { cluster, bootstrap, admin } = await clientCluster(t, 'client-idempotence', 3);

  /** Sends 20 records while a follower of the topic's partition is stopped; answers the producer's retries. */
  const sendThroughStall = async (topic: string, idempotent: boolean, batchBytesMax?: number): Promise<{ offsets: number[]; retries: number; requests: number; batches: number }> => {
    await createServedTopic(admin, topic, 1, 3, { 'min.insync.replicas': 2 });
    const partition = await waitFor(`the whole ISR of ${topic}`, 20_000, async () => {
      const p = (await admin.describeTopic(topic)).partitions[0]!;
      return p.isr.length === 3 ? p : undefined;
    });
    const follower = partition.replicas.find((id) => id !== partition.leader)!;
    const producer = new Producer({ bootstrap, idempotent, lingerMs: 0, requestTimeoutMs: 300, deliveryTimeoutMs: 30_000, ...(batchBytesMax === undefined ? {} : { batchBytesMax }) });
    t.teardown(() => producer.close());
    await producer.send({ topic, value: 'warm' });
    const child = cluster.nodes.get(follower)!.child;
    child.kill('SIGSTOP');
    let offsets: number[];
    try {
      const sends = Array.from({ length: 20 }, (_, i) => producer.send({ topic, value: `v${i}` }));
      await sleep(1500);
      child.kill('SIGCONT');
      offsets = (await Promise.all(sends)).map((r) => r.offset);
    } finally {
      child.kill('SIGCONT');
    }
    const { retries, requests, batches } = producer.metrics();
    await producer.close();
    // The stopped broker was fenced; the next topic needs it back.
    await waitFor('the stopped broker to be alive again', 20_000, async () => ((await admin.describeCluster()).brokers.every((b) => b.state === 'alive') ? true : undefined));
    return { offsets, retries, requests, batches };
  };
  const values = async (topic: string): Promise<string[]> => ((await readAll(bootstrap, admin, topic)).get(0) ?? []).map((r) => r.value?.toString() ?? '');
  const expected = ['warm', ...Array.from({ length: 20 }, (_, i) => `v${i}`)];

  await t.test('with idempotence off, a retry writes the batch again', async (t) => {
    const { retries } = await sendThroughStall('duplicated', false);
    t.ok(retries > 0, `the producer retried ${retries} times`);
    const stored = await values('duplicated');
    t.ok(stored.length > expected.length, `${stored.length} records stored for ${expected.length} sent`);
    t.same([...new Set(stored)], expected, 'the same records, some twice, in order');
  });

  await t.test('with idempotence on, retries are answered with the original offsets', async (t) => {
    // One record per batch: the sends queued behind the first request go as one request of
    // many sequenced batches, and that request is what is retried.
    const { offsets, retries, requests, batches } = await sendThroughStall('once', true, 64);
    t.ok(retries > 0, `the producer retried ${retries} times`);
    t.equal(batches, 21, 'a batch per record');
    t.ok(requests - retries < batches, `${batches} batches in ${requests - retries} requests (besides ${retries} retries)`);
    t.same(offsets, Array.from({ length: 20 }, (_, i) => i + 1), 'each record answered with its one offset');
    t.same(await values('once'), expected, 'every record stored once, in order');
  });

  await t.test('stored batches carry one producer id and consecutive sequences', async (t) => {
    await createServedTopic(admin, 'sequences', 1, 3);
    const producer = new Producer({ bootstrap, lingerMs: 50, batchBytesMax: 1024 });
    t.teardown(() => producer.close());
    for (let round = 0; round < 3; round += 1) {
      await Promise.all(Array.from({ length: 25 }, (_, i) => producer.send({ topic: 'sequences', value: `r${round}-${i}-${'x'.repeat(40)}` })));
    }
    const { requests, batches } = producer.metrics();
    t.ok(requests < batches, `${batches} batches went in ${requests} requests`);
    const headers = await storedBatches(bootstrap, admin, 'sequences');
    t.ok(headers.length >= 4, `${headers.length} batches`);
    t.equal(new Set(headers.map((h) => h.producerId)).size, 1, 'one producer id');
    t.ok(headers[0]!.producerId >= 0, `producer id ${headers[0]!.producerId}`);
    t.same(headers.map((h) => h.producerEpoch), headers.map(() => 0));
    const expectedSequences = headers.map((_, i) => headers.slice(0, i).reduce((sum, h) => sum + h.recordCount, 0));
    t.same(headers.map((h) => h.baseSequence), expectedSequences, 'each baseSequence is the previous one plus its record count');
  });

  await t.test('a partition that lost the producer\'s state: the send fails, the producer takes a new id', async (t) => {
    await createServedTopic(admin, 'recreated', 1, 3);
    const producer = new Producer({ bootstrap, retryBackoffMs: 50, retryBackoffMsMax: 200 });
    t.teardown(() => producer.close());
    await producer.send({ topic: 'recreated', value: 'before' });
    await producer.send({ topic: 'recreated', value: 'before-2' });
    await admin.deleteTopic('recreated');
    await createServedTopic(admin, 'recreated', 1, 3);
    // The partition is new: a batch with sequence 2 of a producer it never saw is refused.
    await t.rejects(producer.send({ topic: 'recreated', value: 'refused' }), { code: 'UNKNOWN_PRODUCER_ID' });
    t.equal(producer.metrics().producerIdResets, 1, 'the producer took a new id');
    const after = await producer.send({ topic: 'recreated', value: 'after' });
    t.equal(after.offset, 0, 'the next send is the first record of the new partition');
    t.same(await values('recreated'), ['after']);
  });
});

/** The headers of every batch stored in partition 0, read from its leader as bytes. */
async function storedBatches(bootstrap: string[], admin: { describeTopic: (name: string) => Promise<{ partitions: ReadonlyArray<{ leader: number | null }> }> }, topic: string): Promise<BatchHeader[]> {
  const leader = (await admin.describeTopic(topic)).partitions[0]!.leader!;
  const client = new Client(`http://${bootstrap[leader - 1]!}`, { allowH2: true, useH2c: true } as Client.Options);
  try {
    const response = await client.request({ method: 'GET', path: `/v1/topics/${topic}/partitions/0/records?offset=0&maxWaitMs=0`, headersTimeout: 5000, bodyTimeout: 5000 });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    const headers: BatchHeader[] = [];
    for (let at = 0; at < bytes.length; at += headers.at(-1)!.sizeBytes) headers.push(readBatchHeader(bytes, at));
    return headers;
  } finally {
    await client.destroy();
  }
}
