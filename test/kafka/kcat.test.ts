// kcat (librdkafka 1.7, a Debian package scripts/install-test-deps.sh installs) unchanged
// against three nodes' Kafka listeners (issue 11): -L lists the brokers, the controller and a
// topic's partitions; -P with idempotence and acks=all writes 300 keyed lines through Java's
// murmur2 partitioner; -C outside any group reads them all back: each once, at dense offsets,
// in the partition ours computes for its key, each key's records in order; -G runs two members
// of a consumer group that split the partitions and commit.
import { execFile, spawn } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { partitionForKey } from '../../src/partitioner.js';
import { kafkaCluster } from '../helpers/kafka.js';
import { h2Json, waitFor } from '../helpers/processes.js';

const run = promisify(execFile);
const TOPIC = 'kc';
const RECORDS = 300;

/** kcat with stdin, bounded in time; resolves with its stdout. */
function kcat(args: string[], input = ''): Promise<string> {
  return new Promise((resolve, reject) => {
    const child = spawn('kcat', args, { stdio: ['pipe', 'pipe', 'pipe'] });
    let out = '';
    let err = '';
    // Generous: a loaded CI machine slows librdkafka's group joins and backoffs.
    const timer = setTimeout(() => { child.kill('SIGKILL'); reject(new Error(`kcat ${args.join(' ')} ran over 60 s: ${err}`)); }, 60_000);
    child.stdout.on('data', (chunk: Buffer) => { out += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { err += chunk.toString(); });
    child.once('close', (code) => {
      clearTimeout(timer);
      if (code === 0) resolve(out);
      else reject(new Error(`kcat ${args.join(' ')} exited ${String(code)}: ${err}`));
    });
    child.stdin.end(input);
  });
}

void t.test('kcat -L, -P (idempotent, acks=all), -C and -G against the Kafka listener', { timeout: 240_000 }, async (t) => {
  await run('kcat', ['-V']).catch(() => { throw new Error('kcat is missing: make test installs it (scripts/install-test-deps.sh)'); });
  const { kafkaPorts, http } = await kafkaCluster(t, 'kcat');
  t.equal((await h2Json(`${http}/v1/topics`, 'POST', { name: TOPIC, partitions: 3, replicationFactor: 3, configs: { 'min.insync.replicas': 2 } })).status, 201);
  await waitFor('every partition led and served', 20_000, async () => {
    const topic = (await h2Json(`${http}/v1/topics/${TOPIC}`)).json as { partitions: Array<{ leader: number; highWatermark: number | null }> };
    return topic.partitions.every((p) => p.leader > 0 && p.highWatermark !== null) ? true : undefined;
  });
  const bootstrap = `127.0.0.1:${kafkaPorts[0] ?? 0}`;

  const listing = await kcat(['-L', '-b', bootstrap, '-t', TOPIC]);
  t.match(listing, /3 brokers:/);
  for (const id of [1, 2, 3]) t.match(listing, new RegExp(`broker ${id} at 127\\.0\\.0\\.1:${kafkaPorts[id - 1] ?? 0}`), `broker ${id} listed at its Kafka address`);
  t.match(listing, /\(controller\)/);
  t.match(listing, new RegExp(`topic "${TOPIC}" with 3 partitions`));

  const lines = Array.from({ length: RECORDS }, (_, i) => `key${i % 23}:value${i}`).join('\n');
  await kcat(['-P', '-b', bootstrap, '-t', TOPIC, '-K', ':', '-X', 'enable.idempotence=true', '-X', 'acks=all', '-X', 'partitioner=murmur2_random'], `${lines}\n`);

  const consumed = await kcat(['-C', '-b', bootstrap, '-t', TOPIC, '-o', 'beginning', '-e', '-q', '-f', '%p %o %k %s\\n']);
  const records = consumed.trim().split('\n').map((line) => {
    const [partition, offset, key, value] = line.split(' ');
    return { partition: Number(partition), offset: Number(offset), key: key ?? '', value: value ?? '' };
  });
  t.equal(records.length, RECORDS, 'every line read back');
  t.equal(new Set(records.map((r) => r.value)).size, RECORDS, 'each once');
  t.same(records.filter((r) => r.partition !== partitionForKey(Buffer.from(r.key), 3)).map((r) => r.key), [], 'each in the partition ours computes for its key (murmur2)');
  for (const partition of [0, 1, 2]) {
    const mine = records.filter((r) => r.partition === partition).sort((a, b) => a.offset - b.offset);
    t.same(mine.map((r) => r.offset), mine.map((_, i) => i), `partition ${partition}: dense offsets from 0`);
    const lastOfKey = new Map<string, number>();
    const disorder = mine.filter((r) => {
      const seq = Number(r.value.slice('value'.length));
      const before = lastOfKey.get(r.key) ?? -1;
      lastOfKey.set(r.key, seq);
      return seq <= before;
    });
    t.same(disorder, [], `partition ${partition}: each key in order`);
  }

  // -G: two balanced consumers of one group (librdkafka's classic group protocol) split the
  // partitions, read every record once between them and commit on close; a member started
  // later reads only the records written after those commits.
  const member = ['-b', bootstrap, '-G', 'kc-group', '-X', 'auto.offset.reset=earliest', '-X', 'auto.commit.interval.ms=100', '-e', '-q', '-f', '%p %o %s\\n', TOPIC];
  const parse = (out: string): Array<{ partition: number; value: string }> => out.trim().split('\n').filter((line) => line.length > 0).map((line) => {
    const [partition, , value] = line.split(' ');
    return { partition: Number(partition), value: value ?? '' };
  });
  const [one, two] = (await Promise.all([kcat(member), kcat(member)])).map(parse);
  t.comment(`-G: one read ${one?.length ?? 0} from partitions ${[...new Set(one?.map((r) => r.partition))].join(',')}, two read ${two?.length ?? 0} from ${[...new Set(two?.map((r) => r.partition))].join(',')}`);
  const both = [...(one ?? []), ...(two ?? [])];
  t.equal(both.length, RECORDS, '-G: the two members read every record once between them');
  t.equal(new Set(both.map((r) => r.value)).size, RECORDS, '-G: no record twice');
  t.ok((one ?? []).length > 0 && (two ?? []).length > 0, '-G: both members were given partitions');
  const more = Array.from({ length: 50 }, (_, i) => `key${i % 7}:later${i}`).join('\n');
  await kcat(['-P', '-b', bootstrap, '-t', TOPIC, '-K', ':', '-X', 'enable.idempotence=true', '-X', 'acks=all'], `${more}\n`);
  const later = parse(await kcat(member));
  t.same(later.map((r) => r.value).sort(), Array.from({ length: 50 }, (_, i) => `later${i}`).sort(), '-G: a member started later goes on from the commits');
});
