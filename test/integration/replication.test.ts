// The replication scenario on three real processes: RF 3, min.insync.replicas 2. Produce
// 10,000 records with acks=all, kill -9 the leader of partition 0, keep producing (to
// whichever broker leads now), restart the killed one; then partition 0 read from offset 0
// holds every acknowledged record exactly once, in order, and the restarted broker is back
// in the ISR. A producer never resends a batch whose outcome it does not know (values are
// unique per attempt), so "exactly once" is about acknowledged records.
import t from 'tap';
import { Client } from 'undici';
import { buildBatch, decodeBatch, readBatchHeader } from '../../storage/record-batch.js';
import { localCluster, waitFor } from '../helpers/processes.js';

interface PartitionView { partition: number; leader: number; leaderEpoch: number; isr: number[]; highWatermark: number | null }
interface TopicView { partitions: PartitionView[] }

const RECORDS_PER_BATCH = 100;
const BATCHES_BEFORE_KILL = 100; // 10,000 records
const BATCHES_AFTER_KILL = 50;

void t.test('acks=all survives kill -9 of a partition leader; the restarted broker rejoins the ISR', { timeout: 180_000 }, async (t) => {
  const cluster = await localCluster(t, 'replication');
  const { ports, nodes } = cluster;
  const base = (id: number): string => `http://127.0.0.1:${ports[id - 1]}`;
  const clients = new Map([1, 2, 3].map((id) => [id, new Client(base(id), { allowH2: true, useH2c: true, pipelining: 10 } as Client.Options)]));
  t.teardown(async () => { await Promise.all([...clients.values()].map((c) => c.destroy())); });
  const json = async (id: number, method: 'GET' | 'POST', path: string, body?: unknown): Promise<{ status: number; json: unknown }> => {
    const response = await clients.get(id)!.request({ method, path, ...(body === undefined ? {} : { headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }), headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await response.body.text();
    return { status: response.statusCode, json: text.length > 0 ? JSON.parse(text) : null };
  };
  for (const id of [1, 2, 3]) cluster.start(id, 'start');
  await waitFor('three alive brokers', 30_000, async () => {
    const view = (await json(1, 'GET', '/v1/brokers').catch(() => ({ json: [] }))).json as Array<{ state: string }>;
    return view.length === 3 && view.every((b) => b.state === 'alive') ? true : undefined;
  });
  const created = await json(1, 'POST', '/v1/topics', { name: 'orders', partitions: 3, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } });
  t.equal(created.status, 201);
  const describe = async (id: number): Promise<TopicView> => (await json(id, 'GET', '/v1/topics/orders')).json as TopicView;
  const p0 = async (id: number): Promise<PartitionView> => (await describe(id)).partitions[0]!;
  // As a Kafka admin client waits for a new topic: until its leader answers for it.
  await waitFor('partition 0 to have a serving leader', 10_000, async () => ((await p0(1)).highWatermark === null ? undefined : true));

  /** Produces one batch of new values to partition 0's leader; answers the acknowledged values or null. */
  let serial = 0;
  let leaderHint = (await p0(1)).leader;
  const acked: string[] = [];
  let failures = 0;
  const failureReasons: string[] = [];
  const produceBatch = async (): Promise<void> => {
    const values = Array.from({ length: RECORDS_PER_BATCH }, () => `r${serial++}-${'x'.repeat(90)}`);
    const batch = buildBatch(values.map((value) => ({ key: null, value: Buffer.from(value), timestampMs: Date.now() })));
    try {
      const response = await clients.get(leaderHint)!.request({ method: 'POST', path: '/v1/topics/orders/partitions/0/records?acks=all&timeoutMs=5000', headers: { 'content-type': 'application/vnd.driftwood.batch' }, body: batch, headersTimeout: 10_000, bodyTimeout: 10_000 });
      const answer = JSON.parse(await response.body.text()) as { baseOffset?: number; leader?: number | null };
      if (response.statusCode === 200) {
        acked.push(...values);
        return;
      }
      failures += 1;
      failureReasons.push(`${response.statusCode} ${JSON.stringify(answer)} from broker ${leaderHint}`);
      if (typeof answer.leader === 'number') leaderHint = answer.leader;
    } catch (error) {
      failures += 1; // the leader is gone: ask any live node who leads now
      failureReasons.push(`${String(error)} from broker ${leaderHint}`);
    }
    for (const id of [1, 2, 3]) {
      if (nodes.get(id)?.child.exitCode !== null) continue;
      const view = await p0(id).catch(() => undefined);
      if (view !== undefined && view.leader > 0) {
        leaderHint = view.leader;
        break;
      }
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  };

  const startedMs = Date.now();
  while (acked.length < BATCHES_BEFORE_KILL * RECORDS_PER_BATCH) await produceBatch();
  const firstPhaseMs = Date.now() - startedMs;
  t.comment(`10,000 records acks=all in ${firstPhaseMs} ms (batches of ${RECORDS_PER_BATCH}, one at a time)`);
  t.same(failureReasons, [], 'no produce failed while the cluster was healthy');

  const victim = (await p0(1)).leader;
  nodes.get(victim)?.child.kill('SIGKILL');
  const killedAt = Date.now();
  const survivor = [1, 2, 3].find((id) => id !== victim) ?? 1;
  const moved = await waitFor('partition 0 to move to a live leader', 15_000, async () => {
    const view = await p0(survivor).catch(() => undefined);
    return view !== undefined && view.leader > 0 && view.leader !== victim ? view : undefined;
  });
  t.comment(`partition 0 led by broker ${moved.leader} ${Date.now() - killedAt} ms after kill -9 of broker ${victim}`);
  for (let i = 0; i < BATCHES_AFTER_KILL; i += 1) await produceBatch();
  t.ok(acked.length > BATCHES_BEFORE_KILL * RECORDS_PER_BATCH, `${acked.length} records acknowledged, ${failures} batches failed around the kill`);

  cluster.start(victim, 'start');
  const rejoined = await waitFor(`broker ${victim} back in partition 0's ISR`, 30_000, async () => {
    const view = await p0(survivor).catch(() => undefined);
    return view?.isr.includes(victim) === true ? view : undefined;
  });
  t.ok(rejoined.isr.includes(victim), `ISR [${rejoined.isr.join(', ')}]`);

  // Read partition 0 from offset 0 at its current leader. The preferred-leader rebalance may
  // hand the leadership back to the rejoined broker meanwhile: a 421 means ask again, as a
  // client does.
  let leader = rejoined.leader;
  const values: string[] = [];
  let offset = 0;
  let expectedOffset = 0;
  for (let moves = 0; ;) {
    const response = await clients.get(leader)!.request({ method: 'GET', path: `/v1/topics/orders/partitions/0/records?offset=${offset}&maxBytes=1048576&maxWaitMs=0` });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    if (response.statusCode === 421 && moves < 5) {
      moves += 1;
      leader = (await waitFor('partition 0 to have a leader', 15_000, async () => {
        const view = await p0(survivor).catch(() => undefined);
        return view !== undefined && view.leader > 0 ? view : undefined;
      })).leader;
      continue;
    }
    t.equal(response.statusCode, 200);
    if (bytes.length === 0) break;
    for (let position = 0; position < bytes.length;) {
      const decoded = decodeBatch(bytes, position);
      for (const record of decoded.records) {
        const at = decoded.header.baseOffset + record.offsetDelta;
        if (at < offset) continue;
        if (at !== expectedOffset) t.fail(`offset ${at} follows ${expectedOffset - 1}`);
        expectedOffset = at + 1;
        values.push(record.value?.toString('utf8') ?? '');
      }
      position += readBatchHeader(bytes, position).sizeBytes;
    }
    offset = Number(response.headers['x-driftwood-next-offset']);
  }
  const positions = new Map<string, number>();
  let duplicates = 0;
  values.forEach((value, i) => {
    if (positions.has(value)) duplicates += 1;
    positions.set(value, i);
  });
  const missing = acked.filter((value) => !positions.has(value));
  t.equal(missing.length, 0, `every acknowledged record is in partition 0 (${acked.length} acknowledged, ${values.length} read)`);
  t.equal(duplicates, 0, 'no record appears twice');
  const order = acked.map((value) => positions.get(value) ?? -1);
  t.ok(order.every((position, i) => i === 0 || position > (order[i - 1] ?? -1)), 'acknowledged records are in the order they were acknowledged');
});
