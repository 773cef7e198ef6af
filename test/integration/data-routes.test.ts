// The data endpoints on one real node: produce binary and JSON, fetch binary and JSON, long
// polls, offsets by time, and every kind of bad input answered with a 4xx code and the log
// left as it was.
import t from 'tap';
import { Client } from 'undici';
import { buildBatch } from '../../storage/record-batch.js';
import { localCluster, waitFor } from '../helpers/processes.js';

const BATCH = 'application/vnd.driftwood.batch';

void t.test('produce, fetch, offsets and bad input on one node', { timeout: 120_000 }, async (t) => {
  const cluster = await localCluster(t, 'data', 1);
  cluster.start(1, 'start');
  const client = new Client(`http://127.0.0.1:${cluster.ports[0]}`, { allowH2: true, useH2c: true, pipelining: 10 } as Client.Options);
  t.teardown(async () => { await client.destroy(); });
  const call = async (method: 'GET' | 'POST', path: string, body?: Buffer | object, contentType = 'application/json'): Promise<{ status: number; json: Record<string, unknown>; bytes: Buffer; headers: Record<string, unknown> }> => {
    const response = await client.request({
      method,
      path,
      idempotent: true,
      ...(body === undefined ? {} : { headers: { 'content-type': contentType }, body: Buffer.isBuffer(body) ? body : JSON.stringify(body) }),
      headersTimeout: 10_000,
      bodyTimeout: 10_000,
    });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    const isJson = String(response.headers['content-type'] ?? '').includes('json');
    return { status: response.statusCode, json: isJson ? JSON.parse(bytes.toString('utf8')) as Record<string, unknown> : {}, bytes, headers: response.headers };
  };
  await waitFor('the node to be ready', 30_000, async () => ((await call('GET', '/readyz').catch(() => ({ status: 0 }))).status === 200 ? true : undefined));
  t.equal((await call('POST', '/v1/topics', { name: 'events', partitions: 2, replicationFactor: 1, configs: { 'max.message.bytes': 2000 } })).status, 201);
  await waitFor('the leader to open its logs', 5000, async () => ((await call('GET', '/v1/topics/events/partitions/0/offsets?timestamp=latest')).status === 200 ? true : undefined));

  const batch = buildBatch([{ key: Buffer.from('a'), value: Buffer.from('one'), timestampMs: 1_000 }, { key: null, value: Buffer.from('two'), timestampMs: 2_000 }]);
  const produced = await call('POST', '/v1/topics/events/partitions/0/records?acks=1', batch, BATCH);
  t.same(produced.json, { partition: 0, baseOffset: 0, recordCount: 2 });
  const viaJson = await call('POST', '/v1/topics/events/partitions/0/records', { records: [{ key: 'k', value: 'three', headers: { h: 'v' }, timestamp: 3_000 }] });
  t.same(viaJson.json, { partition: 0, baseOffset: 2, recordCount: 1 });
  const keyed = await call('POST', '/v1/topics/events/records', { records: [{ key: 'alice', value: 'x' }, { key: 'alice', value: 'y' }] });
  const offsets = keyed.json.offsets as Array<{ partition: number; offset: number }>;
  t.equal(offsets[0]?.partition, offsets[1]?.partition, 'the same key goes to the same partition');

  const binary = await call('GET', '/v1/topics/events/partitions/0/records?offset=0');
  t.equal(binary.headers['content-type'], BATCH);
  t.equal(binary.headers['x-driftwood-high-watermark'], '3');
  t.equal(binary.headers['x-driftwood-next-offset'], '3');
  t.equal(binary.headers['x-driftwood-leader-epoch'], '0');
  t.ok(binary.bytes.subarray(0, batch.length).subarray(61).equals(batch.subarray(61)), 'the records come back as the bytes sent');
  const json = await call('GET', '/v1/topics/events/partitions/0/records?offset=1&format=json');
  t.same(json.json, {
    records: [
      { offset: 1, key: null, value: 'two', timestamp: 2_000, headers: {} },
      { offset: 2, key: 'k', value: 'three', timestamp: 3_000, headers: { h: 'v' } },
    ],
    highWatermark: 3,
    logStartOffset: 0,
    nextOffset: 3,
    leaderEpoch: 0,
  });
  t.equal((await call('GET', '/v1/topics/events/partitions/0/records?offset=0&leaderEpoch=0&format=json')).status, 200, 'the current leader epoch is accepted');
  t.match(await call('GET', '/v1/topics/events/partitions/0/records?offset=0&leaderEpoch=7'), { status: 503, json: { error: 'UNKNOWN_LEADER_EPOCH' } }, 'a newer epoch than the broker knows (KIP-320)');
  t.match(await call('POST', '/v1/elections/preferred'), { status: 200, json: { elected: 0 } }, 'one node leads its preferred partitions already');
  t.same((await call('GET', '/v1/topics/events/partitions/0/offsets?timestamp=earliest')).json, { partition: 0, logStartOffset: 0, highWatermark: 3, offset: 0 });
  t.same((await call('GET', '/v1/topics/events/partitions/0/offsets?timestamp=1500')).json, { partition: 0, logStartOffset: 0, highWatermark: 3, offset: 1, timestamp: 2_000 });
  t.match((await call('GET', '/v1/topics/events/partitions/0/offsets?timestamp=99999999999')).json, { offset: -1 });

  // A long poll waits for data, and answers as soon as it comes.
  const started = Date.now();
  const poll = call('GET', '/v1/topics/events/partitions/0/records?offset=3&maxWaitMs=5000&format=json');
  await new Promise((resolve) => setTimeout(resolve, 300));
  await call('POST', '/v1/topics/events/partitions/0/records', { records: [{ value: 'late' }] });
  const polled = await poll;
  t.match(polled.json, { records: [{ offset: 3, value: 'late' }] });
  t.ok(Date.now() - started < 4000, `the long poll answered once the record came (${Date.now() - started} ms)`);
  const empty = await call('GET', '/v1/topics/events/partitions/0/records?offset=4&maxWaitMs=200&format=json');
  t.same(empty.json.records, [], 'nothing new: an empty answer after maxWaitMs');
  const patientStart = Date.now();
  const patient = call('GET', '/v1/topics/events/partitions/0/records?offset=4&maxWaitMs=1500&minBytes=100000&format=json');
  await new Promise((resolve) => setTimeout(resolve, 200));
  await call('POST', '/v1/topics/events/partitions/0/records', { records: [{ value: 'small' }] });
  t.match((await patient).json, { records: [{ offset: 4, value: 'small' }] });
  t.ok(Date.now() - patientStart >= 1400, `fewer than minBytes: it waited out maxWaitMs (${Date.now() - patientStart} ms)`);

  const corrupt = Buffer.from(batch);
  corrupt.writeUInt8(corrupt.readUInt8(corrupt.length - 1) ^ 0xff, corrupt.length - 1);
  const big = buildBatch([{ key: null, value: Buffer.alloc(3000, 1), timestampMs: 1 }]);
  const bad: Array<[string, 'GET' | 'POST', string, Buffer | object | undefined, string, number, string]> = [
    ['corrupt batch', 'POST', '/v1/topics/events/partitions/0/records', corrupt, BATCH, 400, 'CORRUPT_MESSAGE'],
    ['truncated batch', 'POST', '/v1/topics/events/partitions/0/records', batch.subarray(0, 40), BATCH, 400, 'CORRUPT_MESSAGE'],
    ['batch over max.message.bytes', 'POST', '/v1/topics/events/partitions/0/records', big, BATCH, 413, 'MESSAGE_TOO_LARGE'],
    ['unknown topic', 'POST', '/v1/topics/nope/partitions/0/records', batch, BATCH, 404, 'UNKNOWN_TOPIC_OR_PARTITION'],
    ['unknown partition', 'POST', '/v1/topics/events/partitions/9/records', batch, BATCH, 404, 'UNKNOWN_TOPIC_OR_PARTITION'],
    ['acks=2', 'POST', '/v1/topics/events/partitions/0/records?acks=2', batch, BATCH, 400, 'INVALID_REQUEST'],
    ['not a batch, not JSON records', 'POST', '/v1/topics/events/partitions/0/records', { nothing: true }, 'application/json', 400, 'INVALID_REQUEST'],
    ['a record with a numeric key', 'POST', '/v1/topics/events/partitions/0/records', { records: [{ key: 5, value: 'x' }] }, 'application/json', 400, 'INVALID_REQUEST'],
    ['a topic produce with a numeric key', 'POST', '/v1/topics/events/records', { records: [{ key: 5 }] }, 'application/json', 400, 'INVALID_REQUEST'],
    ['a text body', 'POST', '/v1/topics/events/partitions/0/records', Buffer.from('hello'), 'text/plain', 400, 'INVALID_REQUEST'],
    ['an unknown content type', 'POST', '/v1/topics/events/partitions/0/records', Buffer.from('hello'), 'application/x-other', 415, 'UNSUPPORTED_MEDIA_TYPE'],
    ['negative offset', 'GET', '/v1/topics/events/partitions/0/records?offset=-1', undefined, '', 400, 'INVALID_REQUEST'],
    ['no offset', 'GET', '/v1/topics/events/partitions/0/records', undefined, '', 400, 'INVALID_REQUEST'],
    ['maxBytes over the limit', 'GET', '/v1/topics/events/partitions/0/records?offset=0&maxBytes=999999999', undefined, '', 400, 'INVALID_REQUEST'],
    ['offset past the high watermark', 'GET', '/v1/topics/events/partitions/0/records?offset=99', undefined, '', 416, 'OFFSET_OUT_OF_RANGE'],
    ['bad timestamp', 'GET', '/v1/topics/events/partitions/0/offsets?timestamp=yesterday', undefined, '', 400, 'INVALID_REQUEST'],
  ];
  for (const [what, method, path, body, contentType, status, code] of bad) {
    const answer = await call(method, path, body, contentType);
    t.equal(answer.status, status, `${what}: ${status}`);
    t.equal(answer.json.error, code, `${what}: ${code}`);
  }
  t.match((await call('GET', '/v1/topics/events/partitions/0/records?offset=99')).json, { logStartOffset: 0, highWatermark: 5 }, 'out of range says where the log is');
  t.match((await call('GET', '/v1/topics/events/partitions/0/offsets?timestamp=latest')).json, { offset: 5 }, 'no bad request touched the log');
});
