import { chmod, mkdtemp, rm, writeFile } from 'node:fs/promises';
import net from 'node:net';
import os from 'node:os';
import { join } from 'node:path';
import t from 'tap';
import { resolveConfig, settingsFromEnv, settingsFromFile } from '../src/config.js';
import { checkDataDirWritable, checkIdentity, checkPortFree, readIdentity, writeIdentity } from '../src/node-preflight.js';

const peers = '1@127.0.0.1:9091,2@127.0.0.1:9092,3@127.0.0.1:9093';

void t.test('flags win over the environment, which wins over the file', (t) => {
  const file = { id: 1, peers, data: '/file', voters: [1, 2, 3] };
  const env = settingsFromEnv({ DRIFTWOOD_ID: '2', DRIFTWOOD_DATA: '/env', DRIFTWOOD_OTHER: 'x', DRIFTWOOD_LISTEN: '' });
  t.same(env, { id: '2', data: '/env' });
  const config = resolveConfig(file, env, { data: '/flag' });
  t.same(config, { id: 2, host: '127.0.0.1', port: 9092, peers: config.peers, dataDir: '/flag', voters: [1, 2, 3] }, 'listen defaults to the own peer address');
  t.same(resolveConfig({ id: '3', peers, data: 'd', listen: '0.0.0.0:7000', voters: '1, 2' }), { id: 3, host: '0.0.0.0', port: 7000, peers: config.peers, dataDir: 'd', voters: [1, 2] });
  t.end();
});

void t.test('a node whose id is not in the peers list joins with its own --listen address', (t) => {
  const config = resolveConfig({ id: 4, peers, data: 'd', listen: '127.0.0.1:9094' });
  t.same(config, { id: 4, host: '127.0.0.1', port: 9094, peers: config.peers, dataDir: 'd' });
  t.same(config.peers.map((peer) => peer.id), [1, 2, 3], 'the peers stay the voters it joins');
  t.end();
});

void t.test('bad settings are INVALID_CONFIG naming what is wrong', (t) => {
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ peers, data: 'd' }, /id must be an integer/],
    [{ id: 'x', peers, data: 'd' }, /id must be an integer/],
    [{ id: 1, data: 'd' }, /peers list is missing/],
    [{ id: 4, peers, data: 'd' }, /node id 4 is not in the peers list; to join the cluster as a new broker, give --listen/],
    [{ id: 4, peers, data: 'd', listen: '127.0.0.1:0' }, /a joining node needs a fixed --listen port/],
    [{ id: 1, peers }, /data directory is missing/],
    [{ id: 1, peers, data: ' ' }, /data directory is empty/],
    [{ id: 1, peers, data: 'd', listen: 'x' }, /--listen is HOST:PORT/],
    [{ id: 1, peers, data: 'd', voters: '1,9' }, /voter 9 is not in the peers list/],
    [{ id: 1, peers, data: 7 }, /data must be a string/],
  ];
  for (const [settings, message] of cases) t.throws(() => resolveConfig(settings), { code: 'INVALID_CONFIG', message }, JSON.stringify(settings));
  t.end();
});

void t.test('the Kafka listener: from flags, environment or file; advertised address defaults to the listen address', async (t) => {
  t.equal(resolveConfig({ id: 1, peers, data: 'd' }).kafka, undefined, 'no --kafka-listen, no listener');
  t.same(resolveConfig({ id: 1, peers, data: 'd', kafkaListen: '127.0.0.1:19092' }).kafka, { host: '127.0.0.1', port: 19092, advertisedAddress: '127.0.0.1:19092' });
  t.same(resolveConfig({ id: 1, peers, data: 'd', kafkaListen: '0.0.0.0:19092', kafkaAdvertise: 'broker1.example:9092' }).kafka, { host: '0.0.0.0', port: 19092, advertisedAddress: 'broker1.example:9092' });
  const env = settingsFromEnv({ DRIFTWOOD_KAFKA_LISTEN: '127.0.0.1:19093', DRIFTWOOD_KAFKA_ADVERTISE: 'h:1' });
  t.same(env, { kafkaListen: '127.0.0.1:19093', kafkaAdvertise: 'h:1' });
  t.same(resolveConfig({ id: 1, peers, data: 'd', kafkaListen: '127.0.0.1:1' }, env, { kafkaAdvertise: 'h:2' }).kafka, { host: '127.0.0.1', port: 19093, advertisedAddress: 'h:2' }, 'flags win over the environment, which wins over the file');
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const file = join(dir, 'kafka.json');
  await writeFile(file, JSON.stringify({ id: 1, peers, data: 'd', kafkaListen: '127.0.0.1:19094' }));
  t.same(resolveConfig(await settingsFromFile(file)).kafka, { host: '127.0.0.1', port: 19094, advertisedAddress: '127.0.0.1:19094' });
  const cases: Array<[Record<string, unknown>, RegExp]> = [
    [{ kafkaListen: '0.0.0.0:19092' }, /listens on every interface; give --kafka-advertise/],
    [{ kafkaListen: '127.0.0.1:0' }, /--kafka-listen needs a fixed port/],
    [{ kafkaListen: 'nope' }, /--kafka-listen is HOST:PORT, got 'nope'/],
    [{ kafkaListen: '127.0.0.1:19092', kafkaAdvertise: 'x' }, /--kafka-advertise is HOST:PORT/],
    [{ kafkaListen: '0.0.0.0:19092', kafkaAdvertise: '0.0.0.0:19092' }, /--kafka-advertise must be an address clients can connect to/],
    [{ kafkaAdvertise: 'h:1' }, /--kafka-advertise needs --kafka-listen/],
    [{ kafkaListen: '127.0.0.1:9091' }, /both name port 9091/],
    [{ kafkaListen: 19092 }, /kafkaListen must be a string/],
  ];
  for (const [settings, message] of cases) t.throws(() => resolveConfig({ id: 1, peers, data: 'd', ...settings }), { code: 'INVALID_CONFIG', message }, JSON.stringify(settings));
});

void t.test('--kafka-auto-create-topics: off by default, on from a flag, the environment or a file; only with a Kafka listener', (t) => {
  const listen = { id: 1, peers, data: 'd', kafkaListen: '127.0.0.1:19092' };
  t.equal(resolveConfig(listen).kafka?.autoCreateTopics, undefined, 'off by default');
  t.equal(resolveConfig({ ...listen, kafkaAutoCreateTopics: true }).kafka?.autoCreateTopics, true, 'the flag');
  t.same(settingsFromEnv({ DRIFTWOOD_KAFKA_AUTO_CREATE_TOPICS: 'true' }), { kafkaAutoCreateTopics: 'true' });
  t.equal(resolveConfig(listen, settingsFromEnv({ DRIFTWOOD_KAFKA_AUTO_CREATE_TOPICS: 'true' })).kafka?.autoCreateTopics, true, 'the environment');
  t.equal(resolveConfig({ ...listen, kafkaAutoCreateTopics: false }).kafka?.autoCreateTopics, undefined, 'false in a file');
  t.throws(() => resolveConfig({ id: 1, peers, data: 'd', kafkaAutoCreateTopics: true }), { code: 'INVALID_CONFIG', message: /--kafka-auto-create-topics needs --kafka-listen/ });
  t.throws(() => resolveConfig({ ...listen, kafkaAutoCreateTopics: 'yes' }), { code: 'INVALID_CONFIG', message: /kafkaAutoCreateTopics must be true or false/ });
  t.end();
});

void t.test('config files are JSON objects with known settings only', async (t) => {
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-config-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const good = join(dir, 'good.json');
  await writeFile(good, JSON.stringify({ id: 1, peers, data: 'd' }));
  t.same(await settingsFromFile(good), { id: 1, peers, data: 'd' });
  const cases: Array<[string, RegExp]> = [['[1]', /JSON object/], ['{', /not JSON/], ['{"idd": 1}', /unknown settings: idd/]];
  for (const [text, message] of cases) {
    const path = join(dir, 'bad.json');
    await writeFile(path, text);
    await t.rejects(settingsFromFile(path), { code: 'INVALID_CONFIG', message });
  }
  await t.rejects(settingsFromFile(join(dir, 'missing.json')), { code: 'INVALID_CONFIG', message: /cannot read config file/ });
});

void t.test('preflight: port in use, unwritable data dir, data dir of another node', async (t) => {
  const dir = await mkdtemp(join(os.tmpdir(), 'driftwood-preflight-'));
  t.teardown(() => rm(dir, { recursive: true, force: true }));
  const busy = net.createServer();
  await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
  t.teardown(() => { busy.close(); });
  const address = busy.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  await t.rejects(checkPortFree('127.0.0.1', port), { code: 'INVALID_CONFIG', message: /is in use/ });
  await checkPortFree('127.0.0.1', 0);
  await checkDataDirWritable(join(dir, 'new', 'deeper'));
  const file = join(dir, 'a-file');
  await writeFile(file, 'x');
  await t.rejects(checkDataDirWritable(join(file, 'sub')), { code: 'INVALID_CONFIG', message: /is not a directory/ });
  if (process.getuid?.() !== 0) {
    const locked = join(dir, 'locked');
    await writeFile(join(dir, 'placeholder'), '');
    await chmod(dir, 0o500);
    await t.rejects(checkDataDirWritable(locked), { code: 'INVALID_CONFIG', message: /not writable/ });
    await chmod(dir, 0o700);
  }
  const data = join(dir, 'node-1');
  t.equal(await readIdentity(data), null);
  await checkIdentity(data, 1);
  await writeIdentity(data, { version: 1, nodeId: 1 });
  t.same(await readIdentity(data), { version: 1, nodeId: 1 });
  await checkIdentity(data, 1);
  await t.rejects(checkIdentity(data, 2), { code: 'INCONSISTENT_CLUSTER_ID', message: /belongs to node 1, not 2/ });
});
