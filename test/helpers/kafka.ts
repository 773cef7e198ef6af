// Test helpers for the Kafka listener: a three-node cluster with Kafka listeners, and one raw
// Kafka request answered and decoded with driftwood's own codec.
import { KafkaConnection } from '../../src/bench/kafka-connection.js';
import type { Struct } from '../../src/kafka/protocol/spec.js';
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

/** One Kafka request over a fresh connection to 127.0.0.1:port, answered within 20 s and decoded. */
export async function kafkaCall(port: number, apiKey: number, apiVersion: number, body: Record<string, unknown>): Promise<Record<string, unknown>> {
  const connection = await KafkaConnection.connect('127.0.0.1', port, 'raw', 20_000);
  try {
    return await connection.call(apiKey, apiVersion, body as Struct);
  } finally {
    connection.close();
  }
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
