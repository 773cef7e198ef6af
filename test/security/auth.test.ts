// Real `driftwood start` processes with --auth-token-file: a three-node cluster forms (Raft,
// controller requests, heartbeats and replica fetches all carry the token), the client library
// with the token produces and consumes, and requests without the token or with a wrong one are
// refused with 401 AUTHENTICATION_FAILED on internal routes, changes and produce, leaving the
// data as it was; reads stay open by default and need the token with --auth-reads token.
import type { ChildProcess } from 'node:child_process';
import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Client } from 'undici';
import { Admin } from '../../src/client/admin.js';
import { Consumer, type ConsumerRecord } from '../../src/client/consumer.js';
import { Producer } from '../../src/client/producer.js';
import { killAll, localCluster, startDriftwood, waitFor } from '../helpers/processes.js';

const TOKEN = 'tok-3c7f0e9a1b2d4c6e8f-secret';

interface Answer { status: number; headers: Record<string, unknown>; json: unknown }

/** One request over h2c with the headers given (none: no Authorization). */
async function raw(port: number, method: 'GET' | 'POST' | 'DELETE', path: string, headers: Record<string, string> = {}, body?: unknown): Promise<Answer> {
  const client = new Client(`http://127.0.0.1:${port}`, { allowH2: true, useH2c: true } as Client.Options);
  try {
    const response = await client.request({
      method,
      path,
      headers: { ...headers, ...(body === undefined ? {} : { 'content-type': 'application/json' }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
      headersTimeout: 5000,
      bodyTimeout: 5000,
    });
    const text = await response.body.text();
    return { status: response.statusCode, headers: response.headers, json: text.length > 0 ? JSON.parse(text) : null };
  } finally {
    await client.close();
  }
}

async function readRecords(consumer: Consumer, count: number, timeoutMs: number): Promise<ConsumerRecord[]> {
  const records: ConsumerRecord[] = [];
  const deadline = Date.now() + timeoutMs;
  while (records.length < count && Date.now() < deadline) records.push(...await consumer.poll(200));
  return records;
}

void t.test('a cluster with a bearer token', { timeout: 90_000 }, async (t) => {
  const cluster = await localCluster(t, 'auth');
  const tokenFile = join(cluster.dir, 'token');
  // Surrounding whitespace and the newline an editor adds are not part of the token.
  await writeFile(tokenFile, `  ${TOKEN}\n`, { mode: 0o600 });
  for (const id of [1, 2, 3]) cluster.start(id, 'start', ['--auth-token-file', tokenFile]);
  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`);
  const [port1 = 0, port2 = 0] = cluster.ports;
  const admin = new Admin({ bootstrap, token: TOKEN, requestTimeoutMs: 5000 });
  t.teardown(() => admin.close());

  // Readiness needs a Raft leader and this broker registered and heartbeating with the
  // controller: on every node, only if peer requests carry the token.
  for (const port of cluster.ports) {
    await waitFor(`node on ${port} ready`, 30_000, async () => ((await raw(port, 'GET', '/readyz')).status === 200 ? true : undefined));
  }
  await admin.createTopic({ name: 'orders', partitions: 2, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } });
  const served = await waitFor('orders served with a full ISR', 15_000, async () => {
    const topic = await admin.describeTopic('orders');
    return topic.partitions.every((p) => p.highWatermark !== null && p.isr.length === 3) ? topic : undefined;
  });
  t.equal(served.partitions.length, 2);

  const producer = new Producer({ bootstrap, token: TOKEN, acks: 'all', lingerMs: 0 });
  t.teardown(() => producer.close());
  const sent = await Promise.all(Array.from({ length: 20 }, (_, i) => producer.send({ topic: 'orders', partition: i % 2, value: `v${i}` })));
  t.equal(sent.length, 20, 'acks=all: followers replicated with the token');
  const consumer = new Consumer({ bootstrap, token: TOKEN, fetchMaxWaitMs: 100, autoOffsetReset: 'earliest' });
  t.teardown(() => consumer.close());
  consumer.assign([{ topic: 'orders', partition: 0 }, { topic: 'orders', partition: 1 }]);
  const read = await readRecords(consumer, 20, 15_000);
  t.same(read.map((r) => String(r.value)).sort(), Array.from({ length: 20 }, (_, i) => `v${i}`).sort(), 'a consumer with the token reads every record');

  const before = await admin.describeTopic('orders');
  const refusals: Array<[string, Record<string, string>]> = [
    ['no token', {}],
    ['a wrong token', { authorization: `Bearer ${TOKEN}x` }],
    ['a shorter wrong token', { authorization: 'Bearer x' }],
    ['another scheme', { authorization: `Basic ${Buffer.from(`u:${TOKEN}`).toString('base64')}` }],
  ];
  const raftMessage = { messages: [] };
  for (const [what, headers] of refusals) {
    const checks: Array<[string, 'GET' | 'POST' | 'DELETE', string, unknown]> = [
      ['raft messages (internal)', 'POST', '/internal/raft/messages', raftMessage],
      ['a replica fetch (internal)', 'POST', '/internal/replica/fetch', {}],
      ['a heartbeat to the controller (internal)', 'POST', '/internal/controller/heartbeat', { brokerId: 1, brokerEpoch: 0, appliedIndex: 0 }],
      ['AlterPartition (internal)', 'POST', '/internal/controller/alter-partition', {}],
      ['an internal read', 'GET', '/internal/groups', undefined],
      ['create topic', 'POST', '/v1/topics', { name: 'refused' }],
      ['delete topic', 'DELETE', '/v1/topics/orders', undefined],
      ['produce', 'POST', '/v1/topics/orders/partitions/0/records', { records: [{ value: 'refused' }] }],
      ['produce by key', 'POST', '/v1/topics/orders/records', { records: [{ key: 'k', value: 'refused' }] }],
      ['a group commit', 'POST', '/v1/groups/g/offsets', {}],
    ];
    for (const [route, method, path, body] of checks) {
      const answer = await raw(port2, method, path, headers, body);
      t.equal(answer.status, 401, `${what}: ${route} is refused`);
      t.match(answer.json, { error: 'AUTHENTICATION_FAILED' }, `${what}: ${route} says why`);
      t.equal(answer.headers['www-authenticate'], 'Bearer realm="driftwood"');
      t.notMatch(JSON.stringify(answer.json), TOKEN, 'the answer does not echo the token');
    }
  }
  await t.rejects(new Admin({ bootstrap, requestTimeoutMs: 5000 }).createTopic({ name: 'refused', partitions: 1, replicationFactor: 1 }), { code: 'AUTHENTICATION_FAILED' }, 'the Admin without the token is refused');
  const stranger = new Producer({ bootstrap, token: 'not-the-token', acks: 1, lingerMs: 0, deliveryTimeoutMs: 10_000, requestTimeoutMs: 5000 });
  await t.rejects(stranger.send({ topic: 'orders', partition: 0, value: 'refused' }), { code: 'AUTHENTICATION_FAILED' }, 'a Producer with a wrong token is refused');
  await stranger.close();

  // Reads are open by default, the same answers as with the token.
  const topics = await raw(port1, 'GET', '/v1/topics');
  t.equal(topics.status, 200, 'metadata reads are open');
  // Records are read at the partition's leader (elsewhere: 421 with the leader).
  const leaderPort = cluster.ports[(before.partitions.find((p) => p.partition === 0)?.leader ?? 1) - 1] ?? 0;
  const records = await raw(leaderPort, 'GET', `/v1/topics/orders/partitions/0/records?offset=0&format=json`);
  t.equal(records.status, 200, 'data reads are open');
  t.equal((records.json as { records: unknown[] }).records.length, 10, 'and answer the records');
  const after = await admin.describeTopic('orders');
  t.same(after.partitions.map((p) => [p.partition, p.logEndOffset, p.highWatermark]), before.partitions.map((p) => [p.partition, p.logEndOffset, p.highWatermark]), 'the refused produces wrote nothing');
  t.same((await admin.listTopics()).map((topic) => topic.name).filter((name) => !name.startsWith('__')), ['orders'], 'no topic was created or deleted');
  t.equal((await raw(port1, 'GET', '/healthz')).status, 200);

  const output = [...cluster.nodes.values()].flatMap((node) => node.output).join('');
  t.notMatch(output, TOKEN, 'the token is in no node output');
});

void t.test('--auth-reads token: reads need the token too', { timeout: 60_000 }, async (t) => {
  const cluster = await localCluster(t, 'auth-reads', 1);
  const tokenFile = join(cluster.dir, 'token');
  await writeFile(tokenFile, TOKEN);
  cluster.start(1, 'start', ['--auth-token-file', tokenFile, '--auth-reads', 'token']);
  const [port = 0] = cluster.ports;
  const bearer = { authorization: `Bearer ${TOKEN}` };
  await waitFor('the node ready', 30_000, async () => ((await raw(port, 'GET', '/readyz')).status === 200 ? true : undefined));
  for (const path of ['/v1/topics', '/v1/brokers', '/v1/cluster', '/v1/groups', '/v1/topics/none/partitions/0/records?offset=0']) {
    const refused = await raw(port, 'GET', path);
    t.equal(refused.status, 401, `GET ${path} without the token`);
    t.match(refused.json, { error: 'AUTHENTICATION_FAILED' });
    t.equal((await raw(port, 'GET', path, { authorization: 'Bearer wrong' })).status, 401, `GET ${path} with a wrong token`);
  }
  t.equal((await raw(port, 'GET', '/v1/topics', bearer)).status, 200, 'with the token');
  t.equal((await raw(port, 'GET', '/healthz')).status, 200, 'the health probe stays open');

  // The CLI sends the token from --token-file.
  const processes = new Set<ChildProcess>();
  t.teardown(() => { killAll(processes); });
  const cli = async (args: string[]): Promise<{ code: number | null; output: string }> => {
    const run = startDriftwood([...args, '--bootstrap', `127.0.0.1:${port}`], processes);
    const code = await new Promise<number | null>((resolve) => run.child.once('exit', resolve));
    return { code, output: run.output.join('') };
  };
  const created = await cli(['topics', 'create', 'cli-topic', '--token-file', tokenFile]);
  t.equal(created.code, 0, `topics create with --token-file: ${created.output}`);
  const refused = await cli(['topics', 'list']);
  t.equal(refused.code, 1, 'topics list without the token fails');
  t.match(refused.output, /^driftwood: AUTHENTICATION_FAILED: /, 'in one line with the code');
  t.notMatch(refused.output + created.output, TOKEN);
  const listed = await cli(['topics', 'list', '--token-file', tokenFile, '--json']);
  t.match(JSON.parse(listed.output), [{ name: 'cli-topic' }], 'topics list with the token');
});
