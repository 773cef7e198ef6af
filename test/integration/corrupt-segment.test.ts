// A corrupt sealed segment on a follower, found when it starts (issue 9), on three real
// processes: RF 3, small segments, records produced with acks=all. One follower is killed
// -9, a byte in the middle of one of its sealed segments is flipped and that segment's index
// files are deleted (so the open scans it and checks every CRC), and it is started again.
// It must log the cut, rejoin the ISR, and end up with the leader's bytes below the high
// watermark: it fetched what it lost from the leader by the ordinary follower path.
import { readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import t from 'tap';
import { Client } from 'undici';
import { partitionDirName, readPartitionLog } from '../../src/chaos/node-log-files.js';
import { prefixBelow } from '../../src/chaos/replica-log.js';
import { BATCH_HEADER_BYTES, buildBatch, readBatchHeader } from '../../storage/record-batch.js';
import { h2Json, localCluster, waitFor } from '../helpers/processes.js';

interface PartitionView { partition: number; leader: number; isr: number[]; highWatermark: number | null }
interface TopicView { id: string; partitions: PartitionView[] }

const TOPIC = 'corrupt';
const SEGMENT_BYTES = 8192;
const BATCHES = 60;
const RECORDS_PER_BATCH = 10;

void t.test('a follower with a corrupt sealed segment cuts its log at start, logs it, and fetches the rest from the leader', { timeout: 120_000 }, async (t) => {
  const cluster = await localCluster(t, 'corrupt');
  const { ports, nodes } = cluster;
  const base = (id: number): string => `http://127.0.0.1:${ports[id - 1]}`;
  const dataDir = (id: number): string => join(cluster.dir, `n${id}`);
  for (const id of [1, 2, 3]) cluster.start(id, 'start');
  await waitFor('three alive brokers', 30_000, async () => {
    const view = (await h2Json(`${base(1)}/v1/brokers`)).json as Array<{ state: string }>;
    return view.length === 3 && view.every((b) => b.state === 'alive') ? true : undefined;
  });
  const created = await h2Json(`${base(1)}/v1/topics`, 'POST', { name: TOPIC, partitions: 1, replicationFactor: 3, configs: { 'segment.bytes': SEGMENT_BYTES, 'min.insync.replicas': 2 } });
  t.equal(created.status, 201);
  const describe = async (id: number): Promise<TopicView> => (await h2Json(`${base(id)}/v1/topics/${TOPIC}`)).json as TopicView;
  const p0 = async (id: number): Promise<PartitionView> => {
    const view = (await describe(id)).partitions[0];
    if (view === undefined) throw new Error('no partition 0');
    return view;
  };
  const first = await waitFor('partition 0 with a serving leader and a full ISR', 15_000, async () => {
    const view = await p0(1);
    return view.highWatermark !== null && view.isr.length === 3 ? view : undefined;
  });
  const leader = first.leader;
  const topicId = (await describe(1)).id;

  const client = new Client(base(leader), { allowH2: true, useH2c: true } as Client.Options);
  t.teardown(async () => { await client.destroy(); });
  for (let i = 0; i < BATCHES; i += 1) {
    const values = Array.from({ length: RECORDS_PER_BATCH }, (_, j) => `b${i}-r${j}-${'x'.repeat(100)}`);
    const batch = buildBatch(values.map((value) => ({ key: null, value: Buffer.from(value), timestampMs: Date.now() })));
    const response = await client.request({ method: 'POST', path: `/v1/topics/${TOPIC}/partitions/0/records?acks=all&timeoutMs=5000`, headers: { 'content-type': 'application/vnd.driftwood.batch' }, body: batch, headersTimeout: 10_000, bodyTimeout: 10_000 });
    const text = await response.body.text();
    if (response.statusCode !== 200) throw new Error(`produce ${i}: ${response.statusCode} ${text}`);
  }
  const produced = BATCHES * RECORDS_PER_BATCH;

  const victim = [1, 2, 3].find((id) => id !== leader) ?? 1;
  const victimChild = nodes.get(victim)?.child;
  if (victimChild === undefined) return t.fail(`broker ${victim} was started`);
  const exited = new Promise((resolve) => victimChild.once('exit', resolve));
  victimChild.kill('SIGKILL');
  await exited;
  await waitFor(`broker ${victim} out of the ISR`, 15_000, async () => ((await p0(leader)).isr.includes(victim) ? undefined : true));

  // The damage: a byte in the records of a batch in the middle of a sealed segment in the middle.
  const partitionDir = join(dataDir(victim), 'logs', partitionDirName(TOPIC, topicId, 0));
  const segmentNames = (await readdir(partitionDir)).filter((name) => name.endsWith('.log')).sort();
  t.ok(segmentNames.length >= 4, `the follower has ${segmentNames.length} segments`);
  const damagedIndex = Math.floor(segmentNames.length / 2);
  const damagedName = segmentNames[damagedIndex] ?? '';
  const damagedPath = join(partitionDir, damagedName);
  const bytes = await readFile(damagedPath);
  const positions: Array<{ position: number; baseOffset: number }> = [];
  for (let position = 0; position < bytes.length; position += readBatchHeader(bytes, position).sizeBytes) {
    positions.push({ position, baseOffset: readBatchHeader(bytes, position).baseOffset });
  }
  const bad = positions[Math.floor(positions.length / 2)];
  if (bad === undefined) return t.fail('the damaged segment has batches');
  const flipAt = bad.position + BATCH_HEADER_BYTES + 20;
  bytes[flipAt] = (bytes[flipAt] ?? 0) ^ 0x01;
  await writeFile(damagedPath, bytes);
  await rm(damagedPath.replace(/\.log$/, '.index'), { force: true });
  await rm(damagedPath.replace(/\.log$/, '.timeindex'), { force: true });

  cluster.start(victim, 'start');
  const restarted = nodes.get(victim);
  const line = await waitFor('the truncation to be logged', 30_000, () => Promise.resolve(
    restarted?.output.join('').split('\n').filter((text) => text.includes('partition log truncated at open')).map((text) => JSON.parse(text) as Record<string, unknown>)[0],
  ));
  t.match(line, {
    level: 50,
    topic: TOPIC,
    partition: 0,
    kind: 'sealed-segment',
    file: damagedName,
    damagedAtOffset: bad.baseOffset,
    damagedAtByte: bad.position,
    logEndOffset: bad.baseOffset,
    segmentsRemoved: segmentNames.length - 1 - damagedIndex,
  }, 'the error line names the partition, the file, the offsets and the bytes');
  t.ok(typeof line.truncatedBytes === 'number' && line.truncatedBytes > bytes.length - bad.position, `${String(line.truncatedBytes)} bytes cut`);

  const rejoined = await waitFor(`broker ${victim} back in the ISR`, 30_000, async () => {
    const view = await p0(leader);
    return view.isr.includes(victim) ? view : undefined;
  });
  t.equal(rejoined.highWatermark, produced, 'the high watermark covers every record produced');
  // Followers copy the leader's batches verbatim, so below the high watermark the files match.
  const highWatermark = produced;
  const leaderPrefix = prefixBelow(await readPartitionLog(dataDir(leader), TOPIC, topicId, 0), highWatermark);
  t.equal(leaderPrefix.problem, null);
  const victimPrefix = await waitFor(`broker ${victim}'s log to match the leader's`, 15_000, async () => {
    const prefix = prefixBelow(await readPartitionLog(dataDir(victim), TOPIC, topicId, 0), highWatermark);
    return prefix.problem === null ? prefix : undefined;
  });
  t.equal(victimPrefix.records.length, produced);
  t.ok(victimPrefix.bytes.equals(leaderPrefix.bytes), 'the follower\'s log is byte-identical to the leader\'s below the high watermark');
  const namesAfter = (await readdir(partitionDir)).filter((name) => name.endsWith('.log')).sort();
  t.ok(namesAfter.includes(damagedName), 'the damaged segment was kept (cut) and appended to');
});
