// The Kafka listener on real processes: `driftwood start --kafka-listen` binds, every broker
// registers its Kafka address (GET /v1/brokers), a restart with another --kafka-advertise
// registers the new one, and a raw ApiVersions request is answered with the APIs served.
// A wildcard --kafka-listen without --kafka-advertise is refused before the node starts.
import net from 'node:net';
import t from 'tap';
import { decodeResponse } from '../../src/kafka/protocol/apis.js';
import { freePort } from '../../src/node-free-port.js';
import { h2Json, localCluster, waitFor } from '../helpers/processes.js';

interface BrokerView { id: number; address: string; kafkaAddress: string | null; state: string; epoch: number }

/** Sends one ApiVersions v0 request (correlation id 42) and resolves with the first answer frame, without its size prefix. */
function apiVersions(port: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error('no answer within 10 s')); }, 10_000);
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      clearTimeout(timer);
      socket.destroy();
      resolve(received.subarray(4, 4 + received.readInt32BE(0)));
    });
    socket.on('error', (error) => { clearTimeout(timer); reject(error); });
    socket.on('connect', () => {
      const request = Buffer.alloc(4 + 10);
      request.writeInt32BE(10, 0);
      request.writeInt16BE(18, 4); // ApiVersions
      request.writeInt16BE(0, 6);
      request.writeInt32BE(42, 8);
      request.writeInt16BE(-1, 12); // null client id (request header v1)
      socket.write(request);
    });
  });
}

void t.test('every broker registers its Kafka address; a restart with another advertised address re-registers', { timeout: 120_000 }, async (t) => {
  const cluster = await localCluster(t, 'kafka-listen');
  const kafkaPorts = [await freePort(), await freePort(), await freePort()];
  const kafkaPort = (id: number): number => kafkaPorts[id - 1] ?? 0;
  const brokersUrl = (id: number): string => `http://127.0.0.1:${cluster.ports[id - 1] ?? 0}/v1/brokers`;
  for (const id of [1, 2, 3]) cluster.start(id, 'start', ['--kafka-listen', `127.0.0.1:${kafkaPort(id)}`]);
  const expected = (id: number): string => `127.0.0.1:${kafkaPort(id)}`;
  const listed = await waitFor('three alive brokers with Kafka addresses', 40_000, async () => {
    const brokers = (await h2Json(brokersUrl(1))).json as BrokerView[];
    const ok = brokers.length === 3 && brokers.every((b) => b.state === 'alive' && b.kafkaAddress === expected(b.id));
    return ok ? brokers : undefined;
  });
  t.same(listed.map((b) => [b.id, b.kafkaAddress]), [[1, expected(1)], [2, expected(2)], [3, expected(3)]]);
  const fromNode3 = (await h2Json(brokersUrl(3))).json as BrokerView[];
  t.same(fromNode3.map((b) => b.kafkaAddress), [expected(1), expected(2), expected(3)], 'every node knows every Kafka address');

  // A raw ApiVersions v0 request is answered with the versions served.
  const answer = decodeResponse(18, 0, await apiVersions(kafkaPort(1)));
  t.equal(answer.correlationId, 42);
  t.equal(answer.body.errorCode, 0);
  const keys = (answer.body.apiKeys as Array<{ apiKey: number }>).map((k) => k.apiKey);
  t.ok(keys.includes(18) && keys.includes(3), `ApiVersions and Metadata are served: keys ${keys.join(',')}`);
  const metrics = await fetch(`http://127.0.0.1:${cluster.ports[0] ?? 0}/metrics`).then((response) => response.text());
  t.match(metrics, /driftwood_kafka_requests_total\{api_key="18"\} 1/);
  t.match(metrics, /driftwood_kafka_connections_total\{outcome="accepted"\} 1/);

  // Node 2 restarts (SIGTERM: a clean stop) advertising another address for the same listener.
  const node2 = cluster.nodes.get(2);
  if (node2 === undefined) throw new Error('node 2 was started');
  const epochBefore = listed.find((b) => b.id === 2)?.epoch ?? 0;
  const exited = new Promise((resolve) => node2.child.once('exit', resolve));
  node2.child.kill('SIGTERM');
  t.equal(await exited, 0, 'a clean stop');
  cluster.start(2, 'start', ['--kafka-listen', `127.0.0.1:${kafkaPort(2)}`, '--kafka-advertise', `localhost:${kafkaPort(2)}`]);
  const again = await waitFor('node 2 alive at its new Kafka address', 40_000, async () => {
    const brokers = (await h2Json(brokersUrl(1))).json as BrokerView[];
    const b2 = brokers.find((b) => b.id === 2);
    return b2?.state === 'alive' && b2.kafkaAddress === `localhost:${kafkaPort(2)}` ? b2 : undefined;
  });
  t.ok(again.epoch > epochBefore, 'a new registration, a new broker epoch');
  await new Promise<void>((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port: kafkaPort(2) }, () => { socket.destroy(); resolve(); });
    socket.once('error', reject);
  });
  t.pass('the restarted node listens on its Kafka port');
});

void t.test('a wildcard --kafka-listen without --kafka-advertise is refused with INVALID_CONFIG (exit 2)', { timeout: 30_000 }, async (t) => {
  const cluster = await localCluster(t, 'kafka-wildcard', 1);
  cluster.start(1, 'start', ['--kafka-listen', `0.0.0.0:${await freePort()}`]);
  const started = cluster.nodes.get(1);
  if (started === undefined) throw new Error('node 1 was started');
  const code = await new Promise((resolve) => started.child.once('exit', resolve));
  t.equal(code, 2);
  t.match(started.output.join(''), /listens on every interface; give --kafka-advertise/);
});
