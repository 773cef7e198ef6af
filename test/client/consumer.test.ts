// The Consumer on one real node, assigned partitions by hand: records come back whole and in
// order; seek to an offset, the beginning, the end and a timestamp; pause and resume; the async
// iterator (and where it leaves positions when the loop stops); out-of-range positions under
// each reset policy; long polls on several partitions at once; a tiny fetch buffer; commits
// of a standalone consumer (manual, automatic, on close) and the errors of misuse.
import t from 'tap';
import { Consumer, type ConsumerRecord, type TopicPartition } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { clientCluster, createServedTopic, sleep } from './helpers.js';

const TOPIC = 'events';
const PER_PARTITION = 100;
const tp = (partition: number): TopicPartition => ({ topic: TOPIC, partition });
const all = [tp(0), tp(1), tp(2)];

/** Polls until `count` records came or `timeoutMs` passed. */
async function pollFor(consumer: Consumer, count: number, timeoutMs = 10_000): Promise<ConsumerRecord[]> {
  const records: ConsumerRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (records.length < count && Date.now() < deadline) records.push(...await consumer.poll(200));
  return records;
}

void t.test('the consumer on one node', { timeout: 90_000 }, async (t) => {
  const { bootstrap, admin } = await clientCluster(t, 'client-consumer', 1);
  await createServedTopic(admin, TOPIC, 3, 1);
  const producer = new Producer({ bootstrap, lingerMs: 0 });
  t.teardown(() => producer.close());
  const baseMs = Date.now() - 1_000_000;
  const sends = [];
  for (let partition = 0; partition < 3; partition += 1) {
    for (let i = 0; i < PER_PARTITION; i += 1) {
      sends.push(producer.send({ topic: TOPIC, partition, key: `k${i}`, value: `p${partition}-${i}`, headers: { i: String(i) }, timestampMs: baseMs + i * 1000 }));
    }
  }
  await Promise.all(sends);
  const consumer = (options: Partial<ConstructorParameters<typeof Consumer>[0]> = {}): Consumer => {
    const made = new Consumer({ bootstrap, fetchMaxWaitMs: 200, ...options });
    t.teardown(() => made.close());
    return made;
  };

  await t.test('assign and poll: every record, whole and in order', async (t) => {
    const c = consumer();
    c.assign(all);
    const records = await pollFor(c, 3 * PER_PARTITION);
    t.equal(records.length, 3 * PER_PARTITION);
    for (const partition of [0, 1, 2]) {
      const mine = records.filter((r) => r.partition === partition);
      t.same(mine.map((r) => r.offset), Array.from({ length: PER_PARTITION }, (_, i) => i), `partition ${partition} in offset order`);
      const r = mine[7]!;
      t.same([r.topic, r.key?.toString(), r.value?.toString(), r.timestampMs, r.headers.map((h) => [h.key, h.value?.toString()])], [TOPIC, 'k7', `p${partition}-7`, baseMs + 7000, [['i', '7']]]);
      t.equal(await c.position(tp(partition)), PER_PARTITION);
    }
    t.same(c.assignment(), all);
    t.same(await c.poll(0), [], 'nothing more');
  });

  await t.test('seek to an offset, the beginning, the end and a timestamp', async (t) => {
    const c = consumer();
    c.assign(all);
    await pollFor(c, 3 * PER_PARTITION);
    c.seek(tp(0), 50);
    const fromFifty = await pollFor(c, 50);
    t.same([fromFifty.length, fromFifty[0]?.offset, fromFifty.at(-1)?.offset], [50, 50, 99], 'seek(50) reads 50..99');
    await c.seekToBeginning([tp(1)]);
    t.equal(await c.position(tp(1)), 0);
    t.equal((await pollFor(c, PER_PARTITION)).length, PER_PARTITION, 'seekToBeginning reads the partition again');
    await c.seekToTimestamp([tp(2)], baseMs + 30_000);
    t.equal(await c.position(tp(2)), 30, 'the first record at or after the timestamp');
    await c.seekToTimestamp([tp(2)], Date.now() + 3_600_000);
    t.equal(await c.position(tp(2)), PER_PARTITION, 'no record that recent: the end');
    await c.seekToEnd();
    t.same(await c.poll(300), [], 'at the end, nothing until something is produced');
    const produced = await producer.send({ topic: TOPIC, partition: 2, value: 'late' });
    const late = await pollFor(c, 1);
    t.same(late.map((r) => [r.partition, r.offset, r.value?.toString()]), [[2, produced.offset, 'late']]);
    t.throws(() => { c.seek({ topic: TOPIC, partition: 9 }, 0); }, { code: 'ILLEGAL_STATE' }, 'a partition not assigned');
  });

  await t.test('pause and resume', async (t) => {
    const c = consumer();
    c.assign([tp(0), tp(1)]);
    c.pause([tp(0)]);
    t.same(c.paused(), [tp(0)]);
    const whilePaused = await pollFor(c, PER_PARTITION);
    await sleep(300);
    whilePaused.push(...await c.poll(300));
    t.ok(whilePaused.length === PER_PARTITION && whilePaused.every((r) => r.partition === 1), 'only the partition not paused');
    c.resume([tp(0)]);
    const resumed = await pollFor(c, PER_PARTITION);
    t.ok(resumed.length === PER_PARTITION && resumed.every((r) => r.partition === 0), 'the paused partition after resume');
  });

  await t.test('the async iterator, and where positions are when the loop stops', async (t) => {
    const c = consumer();
    c.assign([tp(0)]);
    const seen: number[] = [];
    for await (const record of c) {
      seen.push(record.offset);
      if (seen.length === 42) break;
    }
    t.same(seen, Array.from({ length: 42 }, (_, i) => i));
    t.equal(await c.position(tp(0)), 42, 'the next poll starts after the last record the loop saw');
    const rest = await pollFor(c, PER_PARTITION - 42);
    t.equal(rest[0]?.offset, 42);
    const running = (async () => {
      let count = 0;
      for await (const record of c) count += record.offset >= 0 ? 1 : 0;
      return count;
    })();
    await sleep(300);
    await c.close();
    t.equal(await running, 0, 'close() ends a loop waiting for records');
    await t.rejects(c.poll(0), { code: 'CLIENT_CLOSED' });
  });

  await t.test('positions outside the log: reset earliest, latest, or an error with none', async (t) => {
    const earliest = consumer({ autoOffsetReset: 'earliest' });
    earliest.assign([tp(0)]);
    earliest.seek(tp(0), 5000);
    const again = await pollFor(earliest, 1);
    t.equal(again[0]?.offset, 0, 'earliest: back to the log start');
    const latest = consumer({ autoOffsetReset: 'latest' });
    latest.assign([tp(1)]);
    t.equal(await latest.position(tp(1)), PER_PARTITION, 'latest: a partition without a position starts at the end');
    latest.seek(tp(1), 5000);
    t.same(await latest.poll(500), []);
    t.equal(await latest.position(tp(1)), PER_PARTITION, 'latest: out of range goes to the end');
    const none = consumer({ autoOffsetReset: 'none' });
    none.assign([tp(0)]);
    await t.rejects(none.poll(2000), { code: 'NO_OFFSET_FOR_PARTITION' }, 'none: no committed offset is an error');
    none.seek(tp(0), 5000);
    await t.rejects(pollFor(none, 1), { code: 'OFFSET_OUT_OF_RANGE' }, 'none: out of range is an error');
    none.seek(tp(0), 10);
    t.equal((await pollFor(none, 1))[0]?.offset, 10, 'a seek clears it');
  });

  await t.test('long polls run on every partition at once', async (t) => {
    const c = consumer({ fetchMaxWaitMs: 5000 });
    c.assign(all);
    await c.seekToEnd();
    const started = Date.now();
    const polled = c.poll(10_000);
    await sleep(300);
    await producer.send({ topic: TOPIC, partition: 2, value: 'wake' });
    const records = await polled;
    const elapsedMs = Date.now() - started;
    t.same(records.map((r) => r.value?.toString()), ['wake']);
    t.ok(elapsedMs < 2500, `answered in ${elapsedMs} ms while partitions 0 and 1 were in 5 s long polls`);
  });

  await t.test('two fetches in flight at most still reach every partition', async (t) => {
    const c = consumer({ fetchMaxWaitMs: 1000, fetchesInFlightMax: 2 });
    c.assign(all);
    await c.seekToEnd();
    const produced = await producer.send({ topic: TOPIC, partition: 2, value: 'last in line' });
    const records = await pollFor(c, 1, 8000);
    t.same(records.map((r) => [r.partition, r.offset]), [[2, produced.offset]], 'partition 2 is fetched while 0 and 1 long-poll in turn');
  });

  await t.test('a fetch buffer of one byte still reads everything, one fetch at a time', async (t) => {
    const c = consumer({ fetchBytesMax: 1, partitionFetchBytesMax: 200, pollRecordsMax: 7 });
    c.assign(all);
    const records = await pollFor(c, 3 * PER_PARTITION);
    t.ok(records.length >= 3 * PER_PARTITION, `${records.length} records`);
  });

  await t.test('standalone commits: manual, automatic and on close', async (t) => {
    const manual = consumer({ groupId: 'standalone', autoCommit: false });
    manual.assign([tp(0)]);
    await pollFor(manual, 60, 10_000).then(() => undefined);
    manual.seek(tp(0), 60);
    await manual.commit();
    t.same(await manual.committed([tp(0), tp(1)]), [
      { topic: TOPIC, partition: 0, offset: 60, metadata: '' },
      { topic: TOPIC, partition: 1, offset: null, metadata: null },
    ]);
    await t.rejects(manual.commit([{ topic: TOPIC, partition: 0, offset: 10 }]), { code: 'COMMIT_OFFSET_REGRESSION' });
    await manual.commit([{ topic: TOPIC, partition: 0, offset: 70, metadata: 'by hand' }]);
    t.same(await manual.committed([tp(0)]), [{ topic: TOPIC, partition: 0, offset: 70, metadata: 'by hand' }]);
    await manual.close();

    const resumed = consumer({ groupId: 'standalone', autoCommitIntervalMs: 200 });
    resumed.assign([tp(0)]);
    t.equal(await resumed.position(tp(0)), 70, 'a new consumer starts at the committed offset');
    t.equal((await pollFor(resumed, 30)).length, 30);
    await sleep(250);
    await resumed.poll(0);
    const committed = await waitForCommit(resumed, 100);
    t.equal(committed, 100, 'poll() committed what earlier polls returned once the interval passed');
    resumed.seek(tp(0), 100);
    await resumed.close();

    const onClose = consumer({ groupId: 'standalone-close' });
    onClose.assign([tp(1)]);
    await pollFor(onClose, PER_PARTITION);
    await onClose.close();
    const checker = consumer({ groupId: 'standalone-close' });
    t.same(await checker.committed([tp(1)]), [{ topic: TOPIC, partition: 1, offset: PER_PARTITION, metadata: '' }], 'close() commits the positions');
  });

  await t.test('misuse', async (t) => {
    const c = consumer();
    await t.rejects(c.poll(0), { code: 'ILLEGAL_STATE' }, 'poll before assign or subscribe');
    t.throws(() => { c.subscribe([TOPIC]); }, { code: 'INVALID_GROUP_ID' }, 'subscribe needs a group');
    await t.rejects(c.commit([{ topic: TOPIC, partition: 0, offset: 1 }]), { code: 'INVALID_GROUP_ID' }, 'commit needs a group');
    t.throws(() => new Consumer({ bootstrap, autoCommit: true }), { code: 'INVALID_CONFIG' });
    t.throws(() => new Consumer({ bootstrap: [] }), { code: 'INVALID_CONFIG' });
    t.throws(() => new Consumer({ bootstrap: ['not an address'] }), { code: 'INVALID_CONFIG' });
    const grouped = consumer({ groupId: 'misuse' });
    grouped.assign([tp(0)]);
    t.throws(() => { grouped.subscribe([TOPIC]); }, { code: 'ILLEGAL_STATE' }, 'subscribe on an assigned consumer');
  });
});

async function waitForCommit(consumer: Consumer, expected: number): Promise<number | null> {
  let offset: number | null = null;
  for (let i = 0; i < 50 && offset !== expected; i += 1) {
    offset = (await consumer.committed([tp(0)]))[0]?.offset ?? null;
    if (offset !== expected) await sleep(100);
  }
  return offset;
}
