// The client commands' parsing and output, without a cluster: usage errors are one line and
// exit code 2 before anything is sent; tables align; JSON and value lines are what scripts read.
import t from 'tap';
import { capture } from '../helpers/capture.js';
import { run } from '../../src/cli/commands.js';
import { formatCluster } from '../../src/cli/cluster-describe.js';
import { consumePlan, formatRecord } from '../../src/cli/consume.js';
import { formatGroup, formatGroupList, formatReset, parsePartitionList, resetFromFlags } from '../../src/cli/groups.js';
import { bootstrapFrom, DEFAULT_BOOTSTRAP, errorText, table } from '../../src/cli/io.js';
import { parseAcks, splitLine } from '../../src/cli/produce.js';
import { formatTopic, formatTopicList, parseConfigs } from '../../src/cli/topics.js';
import { DriftwoodError } from '../../storage/errors.js';

void t.test('--help on every command and subcommand prints usage and exits 0', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['help'], /client commands/],
    [['--help'], /topics create NAME/],
    [['topics'], /topics create NAME/],
    [['topics', '--help'], /topics create NAME/],
    [['topics', 'create', '--help'], /--replication-factor/],
    [['topics', 'delete', '-h'], /topics delete NAME/],
    [['topics', 'describe', '--help'], /topics describe NAME/],
    [['topics', 'list', '--help'], /topics list/],
    [['produce', '--help'], /--key-separator/],
    [['consume', '--help'], /--from-beginning/],
    [['groups', '--help'], /reset-offsets/],
    [['groups', 'list', '--help'], /groups list/],
    [['groups', 'describe', '--help'], /groups describe GROUP/],
    [['groups', 'reset-offsets', '--help'], /--to-datetime/],
    [['groups', 'delete', '--help'], /groups delete GROUP/],
    [['cluster', '--help'], /cluster \[describe\]/],
    [['cluster', 'describe', '--help'], /cluster run/],
    [['cluster', 'run', '--help'], /cluster run \[--nodes 3\]/],
    [['bench', 'storage', '--help'], /bench storage/],
    [['start', '--help'], /start --id N/],
    [['quorum', '-h'], /quorum --id N/],
  ];
  for (const [argv, text] of cases) {
    const out = capture();
    t.equal(await run(argv, out.io), 0, argv.join(' '));
    t.match(out.out.join(''), text, argv.join(' '));
    t.same(out.err, [], argv.join(' '));
  }
});

void t.test('bad usage is one line on stderr and exit code 2, before any request', async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['topics', 'frob'], /unknown topics command 'frob'/],
    [['topics', 'create'], /topics create: missing NAME/],
    [['topics', 'create', 'a', 'b'], /unexpected argument 'b'/],
    [['topics', 'create', 't', '--partitions', '0'], /--partitions must be an integer in \[1, 10000\], got '0'/],
    [['topics', 'create', 't', '--partitions', '2x'], /--partitions must be an integer/],
    [['topics', 'create', 't', '--replication-factor', '-1'], /--replication-factor/],
    [['topics', 'create', 't', '--config', 'retention.ms'], /--config is KEY=VALUE/],
    [['topics', 'create', 't', '--no-such-flag'], /^driftwood: Unknown option '--no-such-flag' \(see 'driftwood topics create --help'\)\n$/],
    [['topics', 'list', '--bootstrap', 'nohost'], /--bootstrap is HOST:PORT/],
    [['topics', 'list', '--bootstrap', ','], /--bootstrap names at least one/],
    [['topics', 'describe'], /missing NAME/],
    [['produce'], /produce: missing TOPIC/],
    [['produce', 't', '--acks', '2'], /--acks must be 0, 1 or all/],
    [['produce', 't', '--key-separator', ''], /--key-separator must not be empty/],
    [['consume', 't', '--format', 'xml'], /--format must be value or json/],
    [['consume', 't', '--offset', '5'], /--offset needs --partition/],
    [['consume', 't', '--group', 'g', '--partition', '0'], /does not go with --group/],
    [['consume', 't', '--partition', '0', '--offset', '3', '--from-beginning'], /contradict/],
    [['consume', 't', '--max-messages', '0'], /--max-messages must be an integer >= 1/],
    [['consume', 't', '--timeout-ms', 'soon'], /--timeout-ms/],
    [['groups', 'describe'], /missing GROUP/],
    [['groups', 'reset-offsets', 'g', '--to-earliest'], /needs --topic/],
    [['groups', 'reset-offsets', 'g', '--topic', 't'], /exactly one of/],
    [['groups', 'reset-offsets', 'g', '--topic', 't', '--to-earliest', '--to-latest'], /exactly one of/],
    [['groups', 'reset-offsets', 'g', '--topic', 't', '--to-datetime', 'yesterday'], /--to-datetime is an ISO 8601/],
    [['groups', 'reset-offsets', 'g', '--topic', 't', '--to-offset', '-3'], /--to-offset/],
    [['groups', 'reset-offsets', 'g', '--topic', 't', '--to-latest', '--partitions', '0,x'], /--partitions is a list/],
    [['cluster', 'describe', 'extra'], /unexpected argument 'extra'/],
    [['cluster', 'run', '--nodes', '12'], /--nodes must be 1 to 9/],
    [['cluster', '--nodes', '3'], /nodes/],
  ];
  for (const [argv, message] of cases) {
    const out = capture();
    t.equal(await run(argv, out.io), 2, argv.join(' '));
    const err = out.err.join('');
    t.match(err, message, argv.join(' '));
    t.equal(err.split('\n').filter((line) => line.length > 0).length, 1, `one line: ${err}`);
    t.match(err, /^driftwood: /);
    t.same(out.out, [], argv.join(' '));
  }
  const pointer = capture();
  await run(['groups', 'reset-offsets', 'g'], pointer.io);
  t.match(pointer.err.join(''), /see 'driftwood groups reset-offsets --help'/);
  const unknown = capture();
  await run(['frobnicate'], unknown.io);
  t.match(unknown.err.join(''), /see 'driftwood --help'/);
});

void t.test('bootstrap: the flag, else DRIFTWOOD_BOOTSTRAP, else the local cluster', (t) => {
  const io = (env: Record<string, string | undefined>) => ({ stdout: () => undefined, stderr: () => undefined, env });
  t.same(bootstrapFrom(undefined, io({})), DEFAULT_BOOTSTRAP.split(','));
  t.same(bootstrapFrom(undefined, io({ DRIFTWOOD_BOOTSTRAP: '10.0.0.1:1, 10.0.0.2:2' })), ['10.0.0.1:1', '10.0.0.2:2']);
  t.same(bootstrapFrom('h:5,http://k:6', io({ DRIFTWOOD_BOOTSTRAP: 'x:1' })), ['h:5', 'k:6']);
  t.throws(() => bootstrapFrom('h', io({})), /HOST:PORT/);
  t.end();
});

void t.test('errors are one line with the code and no stack', (t) => {
  t.equal(errorText(new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', 'topic x\ndoes not exist')), 'UNKNOWN_TOPIC_OR_PARTITION: No such topic or partition: topic x does not exist');
  t.equal(errorText(new Error('plain')), 'plain');
  t.end();
});

void t.test('tables align every column but the last', (t) => {
  t.equal(table(['A', 'LONGER'], [['xyz', '1'], ['p', '22']]), 'A    LONGER\nxyz  1\np    22\n');
  t.equal(table(['A', 'B'], []), 'A  B\n');
  t.end();
});

void t.test('topics: configs, list and describe output', (t) => {
  t.same(parseConfigs(['retention.ms=1000', 'x=a=b']), { 'retention.ms': '1000', x: 'a=b' });
  t.throws(() => parseConfigs(['=1']), /KEY=VALUE/);
  t.throws(() => parseConfigs(['a=1', 'a=2']), /given twice/);
  t.equal(formatTopicList([{ name: 'zeta', id: 'id2', partitions: 12 }, { name: 'alpha', id: 'id1', partitions: 1 }]), 'NAME   PARTITIONS  ID\nalpha  1           id1\nzeta   12          id2\n');
  const text = formatTopic({
    name: 'orders',
    id: 'abc',
    configs: { 'retention.ms': 1000 },
    partitions: [
      { partition: 0, leader: 1, leaderEpoch: 2, replicas: [1, 2, 3], isr: [1, 2], offlineReplicas: [3], logStartOffset: 0, logEndOffset: 10, highWatermark: 9 },
      { partition: 1, leader: null, leaderEpoch: 0, replicas: [2, 3, 1], isr: [], offlineReplicas: [], logStartOffset: null, logEndOffset: null, highWatermark: null },
    ],
  });
  t.match(text, /^topic: +orders$/m);
  t.match(text, /^configs: +retention\.ms=1000$/m);
  t.match(text, /^replication factor: +3$/m);
  const lines = text.split('\n');
  const header = lines.find((line) => line.startsWith('PARTITION')) ?? '';
  t.equal(header, 'PARTITION  LEADER  EPOCH  REPLICAS  ISR  OFFLINE  LOG-START  LOG-END  HIGH-WATERMARK');
  t.ok(lines.includes('0          1       2      1,2,3     1,2  3        0          10       9'));
  t.ok(lines.includes('1          none    0      2,3,1     -    -        -          -        -'));
  t.end();
});

void t.test('groups: reset flags, list, describe and reset output', (t) => {
  const flags = { 'to-earliest': false, 'to-latest': false, 'dry-run': false };
  t.same(resetFromFlags({ ...flags, topic: 't', 'to-earliest': true }), { topic: 't', dryRun: false, to: 'earliest' });
  t.same(resetFromFlags({ ...flags, topic: 't', 'to-offset': '42', partitions: '2,0,2', 'dry-run': true }), { topic: 't', dryRun: true, partitions: [0, 2], to: 'offset', value: 42 });
  t.same(resetFromFlags({ ...flags, topic: 't', 'to-datetime': '2024-05-01T12:00:00Z' }), { topic: 't', dryRun: false, to: 'timestamp', value: Date.UTC(2024, 4, 1, 12) });
  t.same(parsePartitionList(' 3, 1 '), [1, 3]);
  t.equal(formatGroupList([]), 'no groups\n');
  t.equal(formatGroupList([{ group: 'g', state: 'stable', members: 2, coordinatorId: 3 }]), 'GROUP  STATE   MEMBERS  COORDINATOR\ng      stable  2        3\n');
  const text = formatGroup({
    group: 'g',
    state: 'stable',
    groupEpoch: 4,
    assignor: 'range',
    members: [
      { memberId: 'm-1', clientId: 'cli', host: '127.0.0.1', memberEpoch: 4, assignment: [{ topic: 't', partitions: [0, 1] }] },
      { memberId: 'm-2', clientId: 'cli', host: '127.0.0.1', memberEpoch: 4, assignment: [{ topic: 't', partitions: [2] }] },
    ],
    offsets: [{ topic: 't', partition: 1, committed: 5, logEndOffset: 8, lag: 3 }, { topic: 'a', partition: 0, committed: 1, logEndOffset: 1, lag: 0 }],
  });
  const lines = text.split('\n');
  t.ok(lines.includes('m-1        cli        127.0.0.1  4      t:0,1'), text);
  const offsetRows = lines.slice(lines.findIndex((line) => line.startsWith('TOPIC')));
  t.same(offsetRows.slice(0, 5), [
    'TOPIC  PARTITION  COMMITTED  LOG-END  LAG  MEMBER-ID',
    'a      0          1          1        0    -',
    't      0          -          -        -    m-1',
    't      1          5          8        3    m-1',
    't      2          -          -        -    m-2',
  ]);
  t.match(formatGroup({ group: 'e', state: 'empty', groupEpoch: 0, assignor: 'range', members: [], offsets: [] }), /no committed offsets/);
  const reset = formatReset({ group: 'g', dryRun: true, offsets: [{ topic: 't', partition: 0, offset: 7 }] });
  t.match(reset, /^dry run: .*nothing written/);
  t.match(reset, /^t +0 +7$/m);
  t.end();
});

void t.test('cluster describe output', (t) => {
  const text = formatCluster({ clusterId: 'cid', controller: 2, brokers: [{ id: 2, address: 'h:2', state: 'alive', decommissioned: false }, { id: 1, address: 'h:1', state: 'fenced', decommissioned: false }, { id: 3, address: 'h:3', state: 'alive', decommissioned: true }] });
  t.match(text, /^cluster id: +cid$/m);
  t.match(text, /^brokers: +3 \(2 alive, 1 fenced\)$/m);
  t.match(text, /ID +ADDRESS +STATE +CONTROLLER\n1 +h:1 +fenced\n2 +h:2 +alive +yes\n3 +h:3 +alive, decommissioned\n$/);
  t.match(formatCluster({ clusterId: null, controller: 0, brokers: [] }), /controller: +none/);
  t.end();
});

void t.test('produce: acks and key separators', (t) => {
  t.equal(parseAcks('0'), 0);
  t.equal(parseAcks('1'), 1);
  t.equal(parseAcks('all'), 'all');
  t.equal(parseAcks('-1'), 'all');
  t.throws(() => parseAcks('2'));
  t.same(splitLine('k:v:w', ':'), { key: 'k', value: 'v:w' });
  t.same(splitLine('novalue', ':'), { key: null, value: 'novalue' });
  t.same(splitLine('k::v', '::'), { key: 'k', value: 'v' });
  t.same(splitLine(':v', ':'), { key: '', value: 'v' });
  t.same(splitLine('a:b', undefined), { key: null, value: 'a:b' });
  t.end();
});

void t.test('consume: plans and record lines', (t) => {
  const base = { 'from-beginning': false, json: false };
  t.same(consumePlan('t', base), { topic: 't', group: null, fromBeginning: false, maxMessages: null, timeoutMs: null, format: 'value', partition: null, offset: null });
  t.same(consumePlan('t', { ...base, group: 'g', 'from-beginning': true, 'max-messages': '3', 'timeout-ms': '500', json: true }), { topic: 't', group: 'g', fromBeginning: true, maxMessages: 3, timeoutMs: 500, format: 'json', partition: null, offset: null });
  t.same(consumePlan('t', { ...base, partition: '2', offset: 'latest' }).offset, 'latest');
  t.same(consumePlan('t', { ...base, partition: '2', offset: '17' }).offset, 17);
  t.throws(() => consumePlan('t', { ...base, json: true, format: 'value' }), /contradict/);
  const record = { topic: 't', partition: 1, offset: 7, key: Buffer.from('k'), value: Buffer.from('héllo'), headers: [{ key: 'h', value: Buffer.from('v') }, { key: 'n', value: null }], timestampMs: 1700000000000 };
  t.equal(formatRecord(record, 'value'), 'héllo\n');
  t.equal(formatRecord({ ...record, value: null }, 'value'), 'null\n');
  const line = formatRecord(record, 'json');
  t.ok(line.endsWith('\n') && !line.slice(0, -1).includes('\n'));
  t.same(JSON.parse(line), { topic: 't', partition: 1, offset: 7, key: 'k', value: 'héllo', timestamp: 1700000000000, headers: { h: 'v', n: null } });
  t.end();
});
