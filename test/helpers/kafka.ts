// Test helpers for the Kafka listener: a three-node cluster with Kafka listeners, and one raw
// Kafka request answered and decoded with driftwood's own codec.
import net from 'node:net';
import { decodeResponse, encodeRequest } from '../../src/kafka/protocol/apis.js';
import { freePort } from '../../src/node-free-port.js';
import { h2Json, localCluster, waitFor, type LocalCluster } from './processes.js';

export interface KafkaCluster {
  readonly cluster: LocalCluster;
  /** Node id N listens for Kafka clients on kafkaPorts[N - 1]. */
  readonly kafkaPorts: number[];
  /** Node 1's HTTP base URL. */
  readonly http: string;
}

/** Starts three nodes with Kafka listeners and waits until all are alive with their Kafka addresses. */
export async function kafkaCluster(t: { teardown: (fn: () => Promise<void>) => void }, name: string, extra: string[] = []): Promise<KafkaCluster> {
  const cluster = await localCluster(t, name);
  const kafkaPorts = [await freePort(), await freePort(), await freePort()];
  for (const id of [1, 2, 3]) cluster.start(id, 'start', ['--kafka-listen', `127.0.0.1:${kafkaPorts[id - 1] ?? 0}`, ...extra]);
  const http = `http://127.0.0.1:${cluster.ports[0] ?? 0}`;
  await waitFor('three alive brokers with Kafka addresses', 40_000, async () => {
    const brokers = (await h2Json(`${http}/v1/brokers`)).json as Array<{ state: string; kafkaAddress: string | null }>;
    return brokers.length === 3 && brokers.every((b) => b.state === 'alive' && b.kafkaAddress !== null) ? true : undefined;
  });
  return { cluster, kafkaPorts, http };
}

let correlation = 0;

/** One Kafka request over a fresh connection to 127.0.0.1:port, answered within 20 s and decoded. */
export function kafkaCall(port: number, apiKey: number, apiVersion: number, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  correlation += 1;
  const correlationId = correlation;
  const frame = encodeRequest({ apiKey, apiVersion, correlationId, clientId: 'raw' }, body as never);
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: '127.0.0.1', port });
    let received = Buffer.alloc(0);
    const timer = setTimeout(() => { socket.destroy(); reject(new Error(`no answer to api ${apiKey} within 20 s`)); }, 20_000);
    socket.on('error', (error) => { clearTimeout(timer); reject(error); });
    socket.on('close', () => { clearTimeout(timer); reject(new Error(`api ${apiKey} v${apiVersion}: the connection closed without an answer`)); });
    socket.on('data', (chunk: Buffer) => {
      received = Buffer.concat([received, chunk]);
      if (received.length < 4 || received.length < 4 + received.readInt32BE(0)) return;
      clearTimeout(timer);
      socket.destroy();
      const answer = decodeResponse(apiKey, apiVersion, received.subarray(4, 4 + received.readInt32BE(0)));
      if (answer.correlationId !== correlationId) reject(new Error('a stranger\'s answer'));
      else resolve(answer.body);
    });
    socket.on('connect', () => {
      const size = Buffer.alloc(4);
      size.writeInt32BE(frame.length, 0);
      socket.write(Buffer.concat([size, frame]));
    });
  });
}

/** What sendNumbered needs of a KafkaJS producer. */
interface Sender {
  send: (record: { topic: string; acks: number; messages: Array<{ key: string; value: string }> }) => Promise<unknown>;
}

/** Records `from` to `from + count - 1` as key "kN", value "vN", in acks=all sends of 50. */
export async function sendNumbered(producer: Sender, topic: string, from: number, count: number): Promise<void> {
  for (let i = from; i < from + count; i += 50) {
    await producer.send({ topic, acks: -1, messages: Array.from({ length: Math.min(50, from + count - i) }, (_, j) => ({ key: `k${i + j}`, value: `v${i + j}` })) });
  }
}
