// A leader dies under an unchanged Kafka client (issue 11): three real nodes with the Kafka
// listener, a topic of 3 partitions (RF 3, min.insync.replicas 2), and KafkaJS's idempotent
// producer (acks=-1, one request in flight) sending keyed records without pause. After about
// 1,000 acknowledged records the leader of partition 0 is killed with SIGKILL; KafkaJS finds
// the new leader through Metadata and retries there with the same sequence numbers, so a batch
// the dead leader had already replicated is answered with its original offsets rather than
// written again. After about 3,000 more the node comes back, and production stops once every
// partition's ISR is full again (the node caught up; a preferred-leader move may follow).
// Reading every partition back over HTTP then finds each acknowledged record exactly once, at
// the offset KafkaJS was told, no value twice (unacknowledged retries included), and each
// partition (so each key) in send order.
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
/** The kill lands this long at most after a send to partition 0 starts (a send takes ~15 ms here). */
const KILL_DELAY_MS_MAX = 15;

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
  stop: boolean;
}

void t.test('KafkaJS idempotent producer through kill -9 of a partition leader', { timeout: 240_000 }, async (t) => {
  const cluster = await localCluster(t, 'kafka-failover');
  const kafkaPorts = [await freePort(), await freePort(), await freePort()];
  const kafkaArgs = (id: number): string[] => ['--kafka-listen', `127.0.0.1:${kafkaPorts[id - 1] ?? 0}`];
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
    brokers: kafkaPorts.map((port) => `127.0.0.1:${port}`),
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

  const production: Production = { sent: [], acked: [], failures: [], firstPartitionZeroAfterKillMs: -1, killedAtMs: -1, onPartitionZeroSend: null, sending: -1, stop: false };
  const startedMs = Date.now();
  const producing = produceUntilStopped(producer, production);

  await waitFor(`${ACKED_BEFORE_KILL} acknowledged records`, 60_000, () => Promise.resolve(production.acked.length >= ACKED_BEFORE_KILL || production.failures.length > 0 ? true : undefined));
  const victimProcess = cluster.nodes.get(victim)?.child;
  const victimExit = exitOf(victimProcess);
  // The kill lands while a produce to partition 0 is under way, a few ms in: whether the dead
  // leader had written (and a follower copied) that batch varies, and either way KafkaJS's
  // retry at the new leader must leave it stored once.
  const killDelayMs = Math.floor(Math.random() * KILL_DELAY_MS_MAX);
  const inFlight = await new Promise<number>((resolve) => {
    production.onPartitionZeroSend = () => {
      setTimeout(() => {
        victimProcess?.kill('SIGKILL');
        production.killedAtMs = Date.now();
        resolve(production.sending);
      }, killDelayMs);
    };
  });
  const ackedAtKill = production.acked.length;
  const exit = await victimExit;
  t.equal(exit.signal, 'SIGKILL', `broker ${victim} died of SIGKILL after ${ackedAtKill} acknowledged records (${production.killedAtMs - startedMs} ms in), ${killDelayMs} ms into the send of records ${inFlight}.. to partition 0`);

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
  if (retried !== undefined) {
    const leader = (await admin.describeTopic(TOPIC)).partitions[0]?.leader ?? 0;
    const header = await batchHeaderAt(bootstrap[leader - 1] ?? '', 0, retried.offset);
    const written = header.partitionLeaderEpoch === (before[0]?.leaderEpoch ?? -1) ? `by broker ${victim} before it died, so the new leader answered KafkaJS's retry as a duplicate with its offsets` : `anew under leader epoch ${header.partitionLeaderEpoch} (broker ${victim}'s copy, if any, had not reached the new leader)`;
    t.comment(`the send under way at the kill (records ${inFlight}.., partition 0 offset ${retried.offset}) was written ${written}`);
  }
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

function exitOf(child: ChildProcess | undefined): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child === undefined) return Promise.resolve({ code: null, signal: null });
  return new Promise((resolve) => {
    child.once('exit', (code, signal) => { resolve({ code, signal }); });
  });
}
