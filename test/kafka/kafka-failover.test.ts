// A leader dies under an unchanged Kafka client (issue 11): three real nodes with the Kafka
// listener, a topic of 3 partitions (RF 3, min.insync.replicas 2), and KafkaJS's idempotent
// producer (acks=-1, one request in flight) sending keyed records without pause. After about
// 1,000 acknowledged records the leader of partition 0 is killed with SIGKILL at the worst
// moment for idempotence: a batch it wrote and its followers copied (the high watermark passed
// it) whose answer a relay between KafkaJS and that broker held back. KafkaJS finds the new
// leader through Metadata and retries the batch there with the same sequence numbers; the new
// leader, knowing the producer from the replicated log, answers with the original offsets
// rather than writing it again. After about 3,000 more records the node comes back, and
// production stops once every partition's ISR is full again. Reading every partition back over
// HTTP then finds each acknowledged record exactly once, at the offset KafkaJS was told, no
// value twice (unacknowledged retries included), and each partition (so each key) in send
// order. (Checked against two deliberate defects in the build: leaders ignoring producer ids
// store the retried batch twice; followers not replaying producer state fail the retry with
// UNKNOWN_PRODUCER_ID.)
//
// Each send goes to one partition. KafkaJS 2.2.4 mishandles a send that spans several
// leaders when one of them dies: its retry skips every broker that already answered
// (sendMessages' responsePerBroker), so once partition 0 moves to such a broker its records
// are never resent and send() resolves without them, and the next send reuses their
// sequence numbers for other records. Against this cluster that showed as records silently
// dropped, then OUT_OF_ORDER_SEQUENCE_NUMBER, or a later batch answered as the dropped one's
// duplicate (acknowledged records that are not stored); a Kafka broker would answer the same.
import assert from 'node:assert/strict';
import type { ChildProcess } from 'node:child_process';
import net from 'node:net';
import t from 'tap';
import { Kafka, logLevel, Partitioners, type LogEntry, type Producer, type RecordMetadata } from 'kafkajs';
import { Client } from 'undici';
import { Admin } from '../../src/client/admin.js';
import { readBatchHeader, type BatchHeader } from '../../storage/record-batch.js';
import { partitionForKey } from '../../src/partitioner.js';
import { freePort } from '../../src/node-free-port.js';
import { createServedTopic, readAll } from '../client/helpers.js';
import { h2Json, localCluster, waitFor } from '../helpers/processes.js';

const TOPIC = 'payments';
const PARTITIONS = 3;
const KEYS = 30;
const BATCH_RECORDS = 20;
const ACKED_BEFORE_KILL = 1000;
const ACKED_AFTER_KILL = 3000;
/** KafkaJS's retries of one send: enough to outlast a leader election and a fenced broker. */
const SEND_RETRIES = 30;
/** KafkaJS's log lines kept for the failure report. */
const CLIENT_LOG_LINES_MAX = 200;
/** Failed sends after which production gives up (the test fails on the first). */
const FAILURES_MAX = 3;

interface Acked { readonly seq: number; readonly key: string; readonly partition: number; readonly offset: number }

interface Production {
  /** Every record handed to KafkaJS, by seq: its key and the partition murmur2 gives it. */
  readonly sent: Array<{ key: string; partition: number }>;
  readonly acked: Acked[];
  readonly failures: string[];
  /** When partition 0 was first acknowledged after the kill (ms since the kill). */
  firstPartitionZeroAfterKillMs: number;
  killedAtMs: number;
  /** Called as a send to partition 0 starts, once set (then unset). */
  onPartitionZeroSend: (() => void) | null;
  /** The first record of the send under way. */
  sending: number;
  /** How long each acknowledged send took, in order. */
  readonly sendMs: number[];
  stop: boolean;
}

void t.test('KafkaJS idempotent producer through kill -9 of a partition leader', { timeout: 240_000 }, async (t) => {
  const cluster = await localCluster(t, 'kafka-failover');
  const kafkaPorts = [await freePort(), await freePort(), await freePort()];
  // Clients reach each broker through a relay (its advertised address), which can hold back the broker's answers.
  const relays = await Promise.all(kafkaPorts.map((port) => Relay.start(port)));
  t.teardown(() => Promise.all(relays.map((relay) => relay.close())).then(() => undefined));
  const kafkaArgs = (id: number): string[] => ['--kafka-listen', `127.0.0.1:${kafkaPorts[id - 1] ?? 0}`, '--kafka-advertise', `127.0.0.1:${relays[id - 1]?.port ?? 0}`];
  for (const id of [1, 2, 3]) cluster.start(id, 'start', kafkaArgs(id));
  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`);
  const admin = new Admin({ bootstrap, requestTimeoutMs: 5000 });
  t.teardown(() => admin.close());
  await waitFor('three alive brokers with Kafka addresses', 40_000, async () => {
    const brokers = (await h2Json(`http://${bootstrap[0] ?? ''}/v1/brokers`)).json as Array<{ state: string; kafkaAddress: string | null }>;
    return brokers.length === 3 && brokers.every((b) => b.state === 'alive' && b.kafkaAddress !== null) ? true : undefined;
  });
  await createServedTopic(admin, TOPIC, PARTITIONS, 3, { 'min.insync.replicas': 2 });
  const before = (await admin.describeTopic(TOPIC)).partitions;
  const victim = before[0]?.leader ?? 0;
  t.ok(victim > 0, `partition 0 is led by broker ${victim}`);
  const controllerBefore = (await admin.describeCluster()).controller;
  t.comment(`leaders before: ${before.map((p) => `p${p.partition}@${p.leader ?? '-'} (epoch ${p.leaderEpoch})`).join(', ')}; controller ${controllerBefore}; broker ${victim} will be killed (${victim === controllerBefore ? 'the controller too' : 'not the controller'})`);

  const clientLog: string[] = [];
  const kafka = new Kafka({
    clientId: 'driftwood-failover',
    brokers: relays.map((relay) => `127.0.0.1:${relay.port}`),
    logLevel: logLevel.WARN,
    logCreator: () => (entry: LogEntry) => {
      if (clientLog.length < CLIENT_LOG_LINES_MAX) clientLog.push(`${entry.label} ${entry.namespace}: ${entry.log.message}`);
    },
    connectionTimeout: 2000,
    requestTimeout: 10_000,
    retry: { retries: SEND_RETRIES, initialRetryTime: 100, maxRetryTime: 1000 },
  });
  const producer = kafka.producer({ createPartitioner: Partitioners.DefaultPartitioner, idempotent: true, maxInFlightRequests: 1, allowAutoTopicCreation: false, retry: { retries: SEND_RETRIES, initialRetryTime: 100, maxRetryTime: 1000 } });
  await producer.connect();
  t.teardown(() => producer.disconnect());

  const production: Production = { sent: [], acked: [], failures: [], firstPartitionZeroAfterKillMs: -1, killedAtMs: -1, onPartitionZeroSend: null, sending: -1, sendMs: [], stop: false };
  const startedMs = Date.now();
  const producing = produceUntilStopped(producer, production);

  await waitFor(`${ACKED_BEFORE_KILL} acknowledged records`, 60_000, () => Promise.resolve(production.acked.length >= ACKED_BEFORE_KILL || production.failures.length > 0 ? true : undefined));
  const victimProcess = cluster.nodes.get(victim)?.child;
  const victimExit = exitOf(victimProcess);
  // The kill lands in the worst place for idempotence: a batch for partition 0 written by its
  // leader and copied by the followers (the high watermark passed it), its answer held back
  // by the relay, so KafkaJS retries it at the new leader, which must know it from the log.
  const relay = relays[victim - 1];
  assert(relay !== undefined);
  const inFlight = await Promise.race([
    new Promise<number>((resolve) => {
      production.onPartitionZeroSend = () => {
        relay.holding = true;
        resolve(production.sending);
      };
    }),
    producing.then(() => { throw new Error(`production stopped before the kill: ${production.failures.join('; ')}`); }),
  ]);
  const partitionZeroEnd = production.acked.filter((a) => a.partition === 0).length + BATCH_RECORDS;
  const replicated = await waitFor('the held batch under the high watermark', 10_000, async () => {
    const p0 = (await admin.describeTopic(TOPIC)).partitions[0];
    return p0?.leader === victim && (p0.highWatermark ?? 0) >= partitionZeroEnd ? p0 : undefined;
  });
  victimProcess?.kill('SIGKILL');
  production.killedAtMs = Date.now();
  relay.cut();
  const ackedAtKill = production.acked.length;
  const answeredBeforeKill = (production.acked.at(-1)?.seq ?? -1) >= inFlight;
  t.notOk(answeredBeforeKill, `records ${inFlight}.. were not answered before the kill`);
  const exit = await victimExit;
  t.equal(exit.signal, 'SIGKILL', `broker ${victim} died of SIGKILL after ${ackedAtKill} acknowledged records (${production.killedAtMs - startedMs} ms in), with records ${inFlight}.. written to partition 0 up to its high watermark ${replicated.highWatermark ?? '-'} and unanswered (sends took ${quantile(production.sendMs, 0.5)} ms, p99 ${quantile(production.sendMs, 0.99)} ms)`);

  const moved = await waitFor('a new leader of partition 0', 30_000, async () => {
    const p0 = (await admin.describeTopic(TOPIC)).partitions[0];
    return p0 !== undefined && p0.leader !== null && p0.leader > 0 && p0.leader !== victim ? p0 : undefined;
  });
  const electedMs = Date.now() - production.killedAtMs;
  t.not(moved.leader, victim, `partition 0 moved to broker ${moved.leader ?? '-'} (epoch ${before[0]?.leaderEpoch ?? '-'} -> ${moved.leaderEpoch}) ${electedMs} ms after the kill`);
  t.ok(moved.leaderEpoch > (before[0]?.leaderEpoch ?? Infinity), 'with a higher leader epoch');

  await waitFor(`${ACKED_AFTER_KILL} more acknowledged records`, 90_000, () => Promise.resolve(production.acked.length >= ackedAtKill + ACKED_AFTER_KILL || production.failures.length > 0 ? true : undefined));
  const ackedAtRestart = production.acked.length;
  const restartedAtMs = Date.now();
  cluster.start(victim, 'start', kafkaArgs(victim));
  const healed = await waitFor('every partition\'s ISR full again', 60_000, async () => {
    const partitions = (await admin.describeTopic(TOPIC)).partitions;
    return partitions.every((p) => p.isr.length === 3) ? partitions : undefined;
  });
  const isrFullMs = Date.now() - restartedAtMs;
  production.stop = true;
  await producing;
  const producedMs = Date.now() - startedMs;
  t.comment(`acknowledged ${ackedAtKill} before the kill, ${ackedAtRestart - ackedAtKill} between kill and restart, ${production.acked.length - ackedAtRestart} after; ${production.sent.length} records sent in ${producedMs} ms`);
  t.comment(`partition 0 led elsewhere ${electedMs} ms after the kill, acknowledged there ${production.firstPartitionZeroAfterKillMs} ms after it; ISR full ${isrFullMs} ms after the restart: ${healed.map((p) => `p${p.partition}@${p.leader ?? '-'} isr [${p.isr.join(',')}]`).join(', ')}`);
  t.same(production.failures, [], 'no send failed');
  t.ok(production.firstPartitionZeroAfterKillMs >= 0, 'partition 0 took acknowledged writes after its leader died');
  t.ok(production.acked.length >= ackedAtKill + ACKED_AFTER_KILL, 'production went on after the kill');

  const stored = await readAll(bootstrap, admin, TOPIC);
  checkStored(t, production, stored);
  const retried = production.acked.find((a) => a.seq === inFlight);
  t.equal(retried?.offset, partitionZeroEnd - BATCH_RECORDS, `KafkaJS's retry of records ${inFlight}.. was acknowledged at the offset broker ${victim} wrote them at`);
  const leader = (await admin.describeTopic(TOPIC)).partitions[0]?.leader ?? 0;
  const header = await batchHeaderAt(bootstrap[leader - 1] ?? '', 0, partitionZeroEnd - BATCH_RECORDS);
  t.equal(header.partitionLeaderEpoch, before[0]?.leaderEpoch, `stored once, as broker ${victim} wrote it (leader epoch ${header.partitionLeaderEpoch}): the new leader answered the retry as a duplicate`);
  t.comment(`KafkaJS logged ${clientLog.length} warnings or errors${clientLog.length === 0 ? '' : `; first: ${clientLog.slice(0, 8).join(' | ')}`}`);
  if (!t.passing()) {
    for (const [id, node] of cluster.nodes) t.comment(`broker ${id} output tail:\n${node.output.join('').split('\n').slice(-30).join('\n')}`);
  }
});

/** The keys of each partition under murmur2 (KafkaJS's default partitioner and ours agree). */
function keysByPartition(): string[][] {
  const keys: string[][] = Array.from({ length: PARTITIONS }, () => []);
  for (let k = 0; k < KEYS; k += 1) keys[partitionForKey(Buffer.from(`k${k}`), PARTITIONS)]?.push(`k${k}`);
  assert(keys.every((of) => of.length > 0), 'every partition has keys');
  return keys;
}

/**
 * Sends BATCH_RECORDS keyed records per send, each send awaited, until told to stop; records
 * which ones KafkaJS acknowledged and where. Each send's keys all go to one partition (the
 * partitions take turns): a send spanning several leaders loses records in KafkaJS 2.2.4 when
 * one leader dies (see the file's header), which would test KafkaJS rather than the broker.
 * KafkaJS answers with the base offset of the records, which it wrote in the order given.
 */
async function produceUntilStopped(producer: Producer, production: Production): Promise<void> {
  const keys = keysByPartition();
  for (let send = 0; !production.stop; send += 1) {
    const partition = send % PARTITIONS;
    const ofPartition = keys[partition] ?? [];
    const first = production.sent.length;
    production.sending = first;
    if (partition === 0 && production.onPartitionZeroSend !== null) {
      production.onPartitionZeroSend();
      production.onPartitionZeroSend = null;
    }
    const messages = Array.from({ length: BATCH_RECORDS }, (_, i) => {
      const key = ofPartition[(Math.floor(send / PARTITIONS) * BATCH_RECORDS + i) % ofPartition.length] ?? '';
      production.sent.push({ key, partition });
      return { key, value: `v${first + i}` };
    });
    let answers: RecordMetadata[];
    const sentAtMs = Date.now();
    try {
      answers = await producer.send({ topic: TOPIC, acks: -1, messages });
    } catch (error) {
      production.failures.push(`records ${first}..${first + BATCH_RECORDS - 1}: ${error instanceof Error ? `${error.name}: ${error.message}` : String(error)}`);
      if (production.failures.length >= FAILURES_MAX) return;
      continue;
    }
    const answer = answers.length === 1 ? answers[0] : undefined;
    if (answer?.partition !== partition || answer.errorCode !== 0) {
      production.failures.push(`records ${first}..${first + BATCH_RECORDS - 1} for partition ${partition}: answered ${JSON.stringify(answers)}`);
      if (production.failures.length >= FAILURES_MAX) return;
      continue;
    }
    production.sendMs.push(Date.now() - sentAtMs);
    messages.forEach(({ key }, i) => production.acked.push({ seq: first + i, key, partition, offset: Number(answer.baseOffset) + i }));
    if (partition === 0 && production.killedAtMs >= 0 && production.firstPartitionZeroAfterKillMs < 0) production.firstPartitionZeroAfterKillMs = Date.now() - production.killedAtMs;
  }
}

interface Checks {
  equal: (found: unknown, wanted: unknown, message: string) => void;
  same: (found: unknown, wanted: unknown, message: string) => void;
  comment: (message: string) => void;
}

/** Everything the log holds against everything KafkaJS was told. */
function checkStored(t: Checks, production: Production, stored: Map<number, Array<{ offset: number; key: Buffer | null; value: Buffer | null }>>): void {
  const at = new Map<number, Array<{ partition: number; offset: number; key: string }>>();
  const strangers: string[] = [];
  const disordered: string[] = [];
  for (const [partition, records] of stored) {
    let lastSeq = -1;
    const lastOfKey = new Map<string, number>();
    for (const record of records) {
      const value = record.value?.toString() ?? '';
      const seq = /^v\d+$/.test(value) ? Number(value.slice(1)) : -1;
      const key = record.key?.toString() ?? '';
      const sent = seq < 0 ? undefined : production.sent[seq];
      if (sent === undefined || sent.key !== key || sent.partition !== partition) {
        strangers.push(`${partition}@${record.offset}: ${key}=${value}`);
        continue;
      }
      if (seq <= (lastOfKey.get(key) ?? -1)) disordered.push(`${partition}@${record.offset}: ${key}=${value} after v${lastOfKey.get(key) ?? -1}`);
      if (seq <= lastSeq) disordered.push(`${partition}@${record.offset}: v${seq} after v${lastSeq} in the partition`);
      lastOfKey.set(key, seq);
      lastSeq = seq;
      at.set(seq, [...(at.get(seq) ?? []), { partition, offset: record.offset, key }]);
    }
  }
  const storedCount = [...stored.values()].reduce((n, records) => n + records.length, 0);
  const duplicated = [...at].filter(([, places]) => places.length > 1).map(([seq, places]) => `v${seq} at ${places.map((p) => `${p.partition}@${p.offset}`).join(' and ')}`);
  const wrong = production.acked.filter((a) => {
    const places = at.get(a.seq) ?? [];
    const place = places.length === 1 ? places[0] : undefined;
    return place === undefined || place.partition !== a.partition || place.offset !== a.offset || place.key !== a.key;
  }).map((a) => `v${a.seq} acknowledged at ${a.partition}@${a.offset}, stored at ${(at.get(a.seq) ?? []).map((p) => `${p.partition}@${p.offset}`).join(' and ') || 'nowhere'}`);
  t.comment(`stored ${storedCount} records (${[...stored].map(([p, records]) => `p${p}: ${records.length}`).join(', ')}); acknowledged ${production.acked.length}, sent ${production.sent.length}; ${storedCount - production.acked.length} stored without an acknowledgement`);
  t.same(strangers.slice(0, 5), [], `every stored record is one sent, in its key's partition (${strangers.length} not)`);
  t.same(duplicated.slice(0, 5), [], `no value stored twice (${duplicated.length} were)`);
  t.same(wrong.slice(0, 5), [], `every acknowledged record stored once, at the offset KafkaJS was told (${wrong.length} not)`);
  t.same(disordered.slice(0, 5), [], `each key's records, and each partition's, in send order (${disordered.length} not)`);
  t.equal(new Set(production.acked.map((a) => a.seq)).size, production.acked.length, 'KafkaJS acknowledged each record once');
}

/**
 * A loopback TCP relay in front of a broker's Kafka listener. While `holding`, the broker's
 * answers are dropped (the client waits for them); cut() then closes every connection, as a
 * dead broker's connections close.
 */
class Relay {
  holding = false;
  private readonly sockets = new Set<net.Socket>();

  private constructor(private readonly server: net.Server, readonly port: number, private readonly upstreamPort: number) {
    server.on('connection', (client: net.Socket) => { this.relay(client); });
  }

  static async start(upstreamPort: number): Promise<Relay> {
    const server = net.createServer();
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', resolve);
    });
    const address = server.address();
    assert(address !== null && typeof address === 'object');
    return new Relay(server, address.port, upstreamPort);
  }

  private relay(client: net.Socket): void {
    const upstream = net.connect({ host: '127.0.0.1', port: this.upstreamPort });
    this.sockets.add(client);
    this.sockets.add(upstream);
    const end = (): void => {
      client.destroy();
      upstream.destroy();
      this.sockets.delete(client);
      this.sockets.delete(upstream);
    };
    client.on('data', (chunk: Buffer) => { upstream.write(chunk); });
    upstream.on('data', (chunk: Buffer) => { if (!this.holding) client.write(chunk); });
    for (const socket of [client, upstream]) {
      socket.on('error', end);
      socket.on('close', end);
    }
  }

  cut(): void {
    for (const socket of this.sockets) socket.destroy();
    this.sockets.clear();
    this.holding = false;
  }

  close(): Promise<void> {
    this.cut();
    return new Promise((resolve) => { this.server.close(() => { resolve(); }); });
  }
}

/** The header of the batch holding `offset`, read raw from a broker's HTTP consume route. */
async function batchHeaderAt(address: string, partition: number, offset: number): Promise<BatchHeader> {
  const client = new Client(`http://${address}`, { allowH2: true, useH2c: true } as Client.Options);
  try {
    const response = await client.request({ method: 'GET', path: `/v1/topics/${TOPIC}/partitions/${partition}/records?offset=${offset}&maxBytes=65536`, headersTimeout: 5000, bodyTimeout: 5000 });
    const bytes = Buffer.from(await response.body.arrayBuffer());
    assert.equal(response.statusCode, 200, `reading ${partition}@${offset} from ${address}: ${response.statusCode} ${bytes.toString()}`);
    const header = readBatchHeader(bytes, 0);
    assert(header.baseOffset <= offset && offset <= header.baseOffset + header.lastOffsetDelta, `the first batch read holds ${offset}`);
    return header;
  } finally {
    await client.close();
  }
}

function quantile(values: readonly number[], q: number): number {
  assert(values.length > 0, 'a quantile of nothing');
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

function exitOf(child: ChildProcess | undefined): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child === undefined) return Promise.resolve({ code: null, signal: null });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }); });
  });
}
