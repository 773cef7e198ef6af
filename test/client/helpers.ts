// Shared by the client tests: a real cluster of `driftwood start` processes on loopback with an
// Admin client on it, topics whose leaders serve, and reading a topic back whole.
import { Admin } from '../../src/client/admin.js';
import { Consumer, type ConsumerRecord } from '../../src/client/consumer.js';
import { localCluster, waitFor, type LocalCluster } from '../helpers/processes.js';

export interface ClientCluster {
  readonly cluster: LocalCluster;
  readonly bootstrap: string[];
  readonly admin: Admin;
}

interface Teardown {
  teardown: (fn: () => Promise<void>) => void;
}

/** Starts `size` nodes and waits until every one is an alive broker. */
export async function clientCluster(t: Teardown, name: string, size: number): Promise<ClientCluster> {
  const cluster = await localCluster(t, name, size);
  for (let id = 1; id <= size; id += 1) cluster.start(id, 'start');
  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`);
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  t.teardown(() => admin.close());
  await waitFor(`${size} alive brokers`, 30_000, async () => {
    const { brokers } = await admin.describeCluster();
    return brokers.length === size && brokers.every((b) => b.state === 'alive') ? true : undefined;
  });
  return { cluster, bootstrap, admin };
}

/** Creates a topic and waits until each partition's leader serves it (reports its offsets). */
export async function createServedTopic(admin: Admin, name: string, partitions: number, replicationFactor: number, configs: Record<string, string | number | boolean> = {}): Promise<void> {
  await admin.createTopic({ name, partitions, replicationFactor, configs });
  await waitFor(`every partition of ${name} to have a serving leader`, 15_000, async () => {
    const topic = await admin.describeTopic(name);
    return topic.partitions.every((p) => p.highWatermark !== null) ? true : undefined;
  });
}

/** Every record of the topic's partitions up to their high watermarks now, read with a standalone consumer. */
export async function readAll(bootstrap: string[], admin: Admin, topic: string): Promise<Map<number, ConsumerRecord[]>> {
  const description = await waitFor(`the offsets of ${topic}`, 15_000, async () => {
    const described = await admin.describeTopic(topic);
    return described.partitions.every((p) => p.highWatermark !== null) ? described : undefined;
  });
  const ends = new Map(description.partitions.map((p) => [p.partition, p.highWatermark ?? 0]));
  const consumer = new Consumer({ bootstrap, fetchMaxWaitMs: 100 });
  const byPartition = new Map<number, ConsumerRecord[]>([...ends.keys()].map((p) => [p, []]));
  try {
    consumer.assign([...ends.keys()].map((partition) => ({ topic, partition })));
    await consumer.seekToBeginning();
    const deadline = Date.now() + 20_000;
    const done = async (): Promise<boolean> => {
      for (const [partition, end] of ends) if (await consumer.position({ topic, partition }) < end) return false;
      return true;
    };
    while (!(await done())) {
      if (Date.now() > deadline) throw new Error(`reading ${topic} back did not reach its high watermarks`);
      for (const record of await consumer.poll(500)) byPartition.get(record.partition)?.push(record);
    }
  } finally {
    await consumer.close();
  }
  return byPartition;
}

export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}
