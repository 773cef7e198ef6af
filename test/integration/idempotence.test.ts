// Idempotent produce on three real processes: every broker hands out producer ids (distinct,
// from controller blocks); a batch produced twice with the same producer id and sequence is
// stored once and both answers carry the original offset; a gap is refused; and after kill -9
// of the partition leader the new leader (a follower until then) still recognises the retry.
import t from 'tap';
import { Client } from 'undici';
import { buildBatch } from '../../storage/record-batch.js';
import { localCluster, waitFor } from '../helpers/processes.js';

const BATCH = 'application/vnd.driftwood.batch';

interface PartitionView { partition: number; leader: number; isr: number[]; highWatermark: number | null; logEndOffset?: number | null }

void t.test('POST /v1/producer-ids and retried idempotent batches across a leader kill', { timeout: 180_000 }, async (t) => {
  const cluster = await localCluster(t, 'idempotence');
  const clients = new Map([1, 2, 3].map((id) => [id, new Client(`http://127.0.0.1:${cluster.ports[id - 1]}`, { allowH2: true, useH2c: true, pipelining: 10 } as Client.Options)]));
  t.teardown(async () => { await Promise.all([...clients.values()].map((c) => c.destroy())); });
  const call = async (id: number, method: 'GET' | 'POST', path: string, body?: Buffer | object): Promise<{ status: number; json: Record<string, unknown> }> => {
    const headers = body === undefined ? {} : { 'content-type': Buffer.isBuffer(body) ? BATCH : 'application/json' };
    const response = await clients.get(id)!.request({ method, path, headers, ...(body === undefined ? {} : { body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }), headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await response.body.text();
    return { status: response.statusCode, json: text.length > 0 ? JSON.parse(text) as Record<string, unknown> : {} };
  };
  for (const id of [1, 2, 3]) cluster.start(id, 'start');
  await waitFor('three alive brokers', 30_000, async () => {
    const view = (await call(1, 'GET', '/v1/brokers').catch(() => ({ json: [] }))).json as unknown as Array<{ state: string }>;
    return Array.isArray(view) && view.length === 3 && view.every((b) => b.state === 'alive') ? true : undefined;
  });

  // Concurrent first callers on one broker wait for one block request: consecutive ids.
  const burst = await Promise.all(Array.from({ length: 20 }, () => call(2, 'POST', '/v1/producer-ids')));
  t.same(burst.map((r) => r.status), Array.from({ length: 20 }, () => 200));
  const burstIds = burst.map((r) => r.json.producerId as number).sort((a, b) => a - b);
  t.same(burstIds, Array.from({ length: 20 }, (_, i) => (burstIds[0] ?? 0) + i), 'one block, handed out in order');
  // Ids from every broker: each takes its own block from the controller.
  const ids: number[] = [];
  for (const id of [1, 2, 3, 1, 2, 3]) {
    const answer = await waitFor(`a producer id from broker ${id}`, 10_000, async () => {
      const response = await call(id, 'POST', '/v1/producer-ids', id === 1 ? {} : undefined);
      return response.status === 200 ? response.json : undefined;
    });
    t.equal(answer.producerEpoch, 0);
    ids.push(answer.producerId as number);
  }
  t.equal(new Set([...ids, ...burstIds]).size, ids.length + burstIds.length, `distinct ids ${ids.join(', ')}`);
  t.equal(ids[3], (ids[0] ?? 0) + 1, 'a broker hands out its block in order');
  t.match(await call(2, 'POST', '/v1/producer-ids', { transactionalId: 'x' }), { status: 400, json: { error: 'INVALID_REQUEST' } });

  t.equal((await call(1, 'POST', '/v1/topics', { name: 'once', partitions: 1, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } })).status, 201);
  const view = async (id: number): Promise<PartitionView> => ((await call(id, 'GET', '/v1/topics/once')).json.partitions as PartitionView[])[0]!;
  const first = await waitFor('a serving leader with the whole ISR', 15_000, async () => {
    const p = await view(1);
    return p.highWatermark !== null && p.isr.length === 3 ? p : undefined;
  });
  const producerId = ids[0]!;
  const records = (tag: string, count: number): Array<{ value: Buffer; timestampMs: number }> => Array.from({ length: count }, (_, i) => ({ value: Buffer.from(`${tag}-${i}`), timestampMs: Date.now() }));
  const path = '/v1/topics/once/partitions/0/records?acks=all&timeoutMs=5000';
  const plain = await call(first.leader, 'POST', path, buildBatch(records('plain', 2)));
  t.same(plain.json, { partition: 0, baseOffset: 0, recordCount: 2 });
  const a = buildBatch(records('a', 3), { producerId, producerEpoch: 0, baseSequence: 0 });
  const original = await call(first.leader, 'POST', path, a);
  t.same(original, { status: 200, json: { partition: 0, baseOffset: 2, recordCount: 3 } });
  t.same(await call(first.leader, 'POST', path, a), original, 'the retry gets the original answer');
  t.match(await call(first.leader, 'POST', path, buildBatch(records('gap', 1), { producerId, producerEpoch: 0, baseSequence: 4 })), { status: 409, json: { error: 'OUT_OF_ORDER_SEQUENCE_NUMBER' } });
  t.match(await call(first.leader, 'POST', path, buildBatch(records('new', 1), { producerId: ids[1]!, producerEpoch: 0, baseSequence: 2 })), { status: 409, json: { error: 'UNKNOWN_PRODUCER_ID' } });
  const b = buildBatch(records('b', 1), { producerId, producerEpoch: 0, baseSequence: 3 });
  t.same((await call(first.leader, 'POST', path, b)).json, { partition: 0, baseOffset: 5, recordCount: 1 });
  await waitFor('every follower to have the batches', 10_000, async () => ((await view(first.leader)).highWatermark === 6 ? true : undefined));

  // The leader dies; its successor learned the producer as a follower.
  cluster.nodes.get(first.leader)?.child.kill('SIGKILL');
  const survivor = [1, 2, 3].find((id) => id !== first.leader)!;
  const moved = await waitFor('a new leader for the partition', 20_000, async () => {
    const p = await view(survivor).catch(() => undefined);
    return p !== undefined && p.leader > 0 && p.leader !== first.leader && p.highWatermark !== null ? p : undefined;
  });
  const retried = await waitFor('the new leader to take writes', 10_000, async () => {
    const response = await call(moved.leader, 'POST', path, b);
    return response.status === 200 ? response : undefined;
  });
  t.same(retried.json, { partition: 0, baseOffset: 5, recordCount: 1 }, `broker ${moved.leader} answers the retry with the original offset`);
  t.same((await call(moved.leader, 'POST', path, a)).json, original.json, 'an older batch of the window too');
  const next = await call(moved.leader, 'POST', path, buildBatch(records('c', 2), { producerId, producerEpoch: 0, baseSequence: 4 }));
  t.same(next.json, { partition: 0, baseOffset: 6, recordCount: 2 }, 'nothing was written twice');
  const read = await call(moved.leader, 'GET', '/v1/topics/once/partitions/0/records?offset=0&format=json&maxWaitMs=0');
  t.same((read.json.records as Array<{ value: string }>).map((r) => r.value), ['plain-0', 'plain-1', 'a-0', 'a-1', 'a-2', 'b-0', 'c-0', 'c-1']);
});
