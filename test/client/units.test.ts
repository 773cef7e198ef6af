// The client's pure parts, without a cluster: backoff bounds, sequence arithmetic, the buffer
// pool's order and deadline, the record size bound against the real encoder, addresses,
// malformed broker answers, and what a request to nowhere turns into.
import fc from 'fast-check';
import t from 'tap';
import { BufferPool, nextSequence, normalizeHeaders, recordSizeBytes, toBytes } from '../../src/client/accumulator.js';
import { Connections, errorFromAnswer, numberHeader } from '../../src/client/connections.js';
import { byTopic } from '../../src/client/group-member.js';
import { parseBrokers, parseTopic } from '../../src/client/metadata.js';
import { normalizeAddress, resolveClientOptions } from '../../src/client/options.js';
import { backoffMs, isRetriable, needsMetadataRefresh, retryUntil, Timers } from '../../src/client/retry.js';
import { freePort } from '../../src/node-free-port.js';
import { DriftwoodError } from '../../storage/errors.js';
import { BATCH_HEADER_BYTES, buildBatch } from '../../storage/record-batch.js';

void t.test('backoff doubles from retryBackoffMs up to retryBackoffMsMax, within 20% jitter', (t) => {
  const backoff = { retryBackoffMs: 100, retryBackoffMsMax: 1000 };
  for (const [attempt, base] of [[0, 100], [1, 200], [2, 400], [3, 800], [4, 1000], [60, 1000]] as const) {
    for (let i = 0; i < 50; i += 1) {
      const ms = backoffMs(attempt, backoff);
      if (ms < base * 0.8 || ms > base * 1.2) t.fail(`attempt ${attempt}: ${ms} ms is outside ${base} ± 20%`);
    }
  }
  t.equal(backoffMs(5, { retryBackoffMs: 50, retryBackoffMsMax: 50 }), 50, 'a fixed backoff has no jitter');
  t.ok(isRetriable(new DriftwoodError('NOT_ENOUGH_REPLICAS')) && !isRetriable(new DriftwoodError('MESSAGE_TOO_LARGE')) && !isRetriable(new Error('x')));
  t.ok(needsMetadataRefresh(new DriftwoodError('FENCED_LEADER_EPOCH')) && !needsMetadataRefresh(new DriftwoodError('REQUEST_TIMED_OUT')));
  t.end();
});

void t.test('retryUntil retries what may pass until its deadline, and nothing else', async (t) => {
  const timers = new Timers();
  const backoff = { retryBackoffMs: 10, retryBackoffMsMax: 40 };
  let calls = 0;
  const started = performance.now();
  await t.rejects(retryUntil(() => { calls += 1; return Promise.reject(new DriftwoodError('NOT_CONTROLLER')); }, isRetriable, performance.now() + 200, backoff, timers), { code: 'NOT_CONTROLLER' });
  t.ok(performance.now() - started >= 195, 'until the deadline');
  t.ok(calls >= 5, `${calls} tries`);
  calls = 0;
  await t.rejects(retryUntil(() => { calls += 1; return Promise.reject(new DriftwoodError('INVALID_REQUEST')); }, isRetriable, performance.now() + 200, backoff, timers), { code: 'INVALID_REQUEST' });
  t.equal(calls, 1, 'not retriable: one try');
  let flaky = 2;
  t.equal(await retryUntil(() => (flaky-- > 0 ? Promise.reject(new DriftwoodError('LOG_CLOSED')) : Promise.resolve('done')), isRetriable, performance.now() + 1000, backoff, timers), 'done');
  const sleeping = timers.sleep(60_000);
  const closedAt = performance.now();
  timers.close();
  await sleeping;
  t.ok(performance.now() - closedAt < 100, 'close ends a sleep at once');
  let ran = false;
  timers.after(0, () => { ran = true; });
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.notOk(ran, 'a closed timer set runs nothing');
});

void t.test('sequences are int32 and wrap to 0', (t) => {
  t.equal(nextSequence(0, 5), 5);
  t.equal(nextSequence(0x7fffffff - 2, 3), 0);
  t.equal(nextSequence(0x7fffffff, 1), 0);
  t.equal(nextSequence(0x7fffffff - 1, 5), 3);
  t.end();
});

void t.test('the buffer pool serves waiters in order and rejects one past its wait', async (t) => {
  const timers = new Timers();
  t.teardown(() => { timers.close(); });
  const pool = new BufferPool(1000, timers);
  t.ok(pool.tryReserve(600));
  t.notOk(pool.tryReserve(500), 'over the limit');
  const order: string[] = [];
  const big = pool.reserve(900, 5000).then(() => order.push('big'));
  t.notOk(pool.tryReserve(100), 'a waiter is first in line, even for a small send');
  const small = pool.reserve(100, 5000).then(() => order.push('small'));
  t.ok(pool.exhausted);
  const late = pool.reserve(500, 30);
  await t.rejects(late, { code: 'BUFFER_EXHAUSTED' });
  pool.release(600);
  await Promise.all([big, small]);
  t.same(order, ['big', 'small']);
  t.equal(pool.used, 1000);
  const closed = pool.reserve(10, 5000);
  pool.close(new DriftwoodError('CLIENT_CLOSED'));
  await t.rejects(closed, { code: 'CLIENT_CLOSED' });
});

void t.test('recordSizeBytes bounds what the record takes in an encoded batch', (t) => {
  const bytes = fc.option(fc.uint8Array({ maxLength: 300 }), { nil: null });
  const record = fc.record({
    key: bytes,
    value: bytes,
    headers: fc.array(fc.record({ key: fc.string({ maxLength: 20 }), value: bytes }), { maxLength: 4 }),
    timestampMs: fc.integer({ min: 0, max: 2 ** 45 }),
  });
  fc.assert(fc.property(record, (r) => {
    const producerRecord = {
      key: r.key === null ? null : Buffer.from(r.key),
      value: r.value === null ? null : Buffer.from(r.value),
      headers: r.headers.map((h) => ({ key: h.key, value: h.value === null ? null : Buffer.from(h.value) })),
      timestampMs: r.timestampMs,
    };
    return buildBatch([producerRecord]).length - BATCH_HEADER_BYTES <= recordSizeBytes(producerRecord);
  }));
  t.end();
});

void t.test('keys, values and headers become bytes', (t) => {
  t.same(toBytes('é', 'value'), Buffer.from('é'));
  t.equal(toBytes(null, 'value'), null);
  t.same(toBytes(new Uint8Array([1, 2]), 'value'), Buffer.from([1, 2]));
  t.throws(() => toBytes(5 as unknown as string, 'value'), { code: 'INVALID_REQUEST' });
  t.same(normalizeHeaders({ a: 'x', b: null }), [{ key: 'a', value: Buffer.from('x') }, { key: 'b', value: null }]);
  t.same(normalizeHeaders([{ key: 'a', value: 'x' }, { key: 'a', value: 'y' }]), [{ key: 'a', value: Buffer.from('x') }, { key: 'a', value: Buffer.from('y') }], 'a list keeps repeated keys');
  t.same(byTopic([{ topic: 'b', partition: 2 }, { topic: 'a', partition: 1 }, { topic: 'b', partition: 0 }]), [{ topic: 'b', partitions: [0, 2] }, { topic: 'a', partitions: [1] }]);
  t.end();
});

void t.test('addresses and options', (t) => {
  t.equal(normalizeAddress('127.0.0.1:9091'), '127.0.0.1:9091');
  t.equal(normalizeAddress('http://localhost:9092'), 'localhost:9092');
  for (const bad of ['', 'localhost', 'https://h:1', 'http://h:1/path', '::::']) t.throws(() => normalizeAddress(bad), { code: 'INVALID_CONFIG' }, JSON.stringify(bad));
  t.throws(() => resolveClientOptions({ bootstrap: ['h:1'], retryBackoffMs: 500, retryBackoffMsMax: 100 }, 'x'), { code: 'INVALID_CONFIG' });
  t.throws(() => resolveClientOptions({ bootstrap: ['h:1'], requestTimeoutMs: 0 }, 'x'), { code: 'INVALID_CONFIG' });
  t.equal(resolveClientOptions({ bootstrap: ['h:1'] }, 'producer').clientId, 'driftwood-producer');
  t.end();
});

void t.test('malformed broker answers are CORRUPT_MESSAGE, error answers their DriftwoodError', (t) => {
  const good = { name: 't', id: 'x', partitions: [{ partition: 0, leader: -1, leaderEpoch: 3, replicas: [1], isr: [] }] };
  t.same(parseTopic(good, 't').partitions[0], { partition: 0, leader: null, leaderEpoch: 3, replicas: [1], isr: [], offlineReplicas: [] }, 'no leader is null; no offline replicas named is none');
  for (const bad of [null, [], { name: 'other', partitions: [] }, { name: 't', partitions: [{ partition: 1, leaderEpoch: 0, replicas: [], isr: [] }] }]) {
    t.throws(() => parseTopic(bad, 't'), { code: 'CORRUPT_MESSAGE' });
  }
  t.same(parseBrokers([{ id: 1, address: 'h:1', state: 'fenced' }, { id: 2, address: 'h:2', state: 'alive', decommissioned: true }]), [{ id: 1, address: 'h:1', state: 'fenced', decommissioned: false }, { id: 2, address: 'h:2', state: 'alive', decommissioned: true }]);
  t.throws(() => parseBrokers([{ id: 'one' }]), { code: 'CORRUPT_MESSAGE' });
  const error = errorFromAnswer({ status: 421, headers: {}, body: Buffer.from(JSON.stringify({ error: 'NOT_LEADER_OR_FOLLOWER', message: 'x', leader: 2 })) });
  t.match(error, { code: 'NOT_LEADER_OR_FOLLOWER', hints: { leader: 2 } });
  t.match(errorFromAnswer({ status: 502, headers: {}, body: Buffer.from('<html>') }), { code: 'REQUEST_TIMED_OUT' }, 'an answer that is not ours: outcome unknown');
  t.equal(numberHeader({ status: 200, headers: { a: '12', b: 'x', c: ['7'] }, body: Buffer.alloc(0) }, 'a'), 12);
  t.equal(numberHeader({ status: 200, headers: { b: 'x' }, body: Buffer.alloc(0) }, 'b'), undefined);
  t.equal(numberHeader({ status: 200, headers: { c: ['7'] }, body: Buffer.alloc(0) }, 'c'), 7);
  t.end();
});

void t.test('a request to a port nobody listens on was never sent; after close, CLIENT_CLOSED', async (t) => {
  const connections = new Connections(4);
  const address = `127.0.0.1:${await freePort()}`;
  await t.rejects(connections.request(address, { method: 'GET', path: '/healthz', timeoutMs: 1000 }), { code: 'NETWORK_EXCEPTION', hints: { sent: false, address } });
  await connections.close();
  await t.rejects(connections.request(address, { method: 'GET', path: '/healthz', timeoutMs: 1000 }), { code: 'CLIENT_CLOSED' });
});
