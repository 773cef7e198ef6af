// The built `driftwood` binary against a real three-node cluster: topics, produce from stdin,
// consume alone and in a group (a second run continues after the first one's commit; SIGTERM
// commits and leaves), groups, cluster, --json outputs that parse, and exit codes.
import { spawn, type ChildProcess } from 'node:child_process';
import t from 'tap';
import { BIN, killAll, localCluster, waitFor } from '../helpers/processes.js';

interface Ran {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** How long one CLI run may take before the test kills it. */
const RUN_MS_MAX = 30_000;

function lines(text: string): string[] {
  return text.split('\n').filter((line) => line.length > 0);
}

void t.test('driftwood topics, produce, consume, groups and cluster on a real cluster', { timeout: 240_000 }, async (t) => {
  const cluster = await localCluster(t, 'cli');
  for (const id of [1, 2, 3]) cluster.start(id, 'start');
  const bootstrap = cluster.ports.map((port) => `127.0.0.1:${port}`).join(',');
  const processes = new Set<ChildProcess>();
  t.teardown(() => { killAll(processes); });

  const start = (args: string[], input?: string): { child: ChildProcess; done: Promise<Ran>; stdout: () => string } => {
    const child = spawn(process.execPath, [BIN, ...args], { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, DRIFTWOOD_BOOTSTRAP: bootstrap } });
    processes.add(child);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (chunk: Buffer) => { stdout += chunk.toString(); });
    child.stderr.on('data', (chunk: Buffer) => { stderr += chunk.toString(); });
    child.stdin.end(input ?? '');
    const timer = setTimeout(() => child.kill('SIGKILL'), RUN_MS_MAX);
    const done = new Promise<Ran>((resolve) => {
      child.once('close', (code) => {
        clearTimeout(timer);
        processes.delete(child);
        resolve({ code, stdout, stderr });
      });
    });
    return { child, done, stdout: () => stdout };
  };
  const cli = (args: string[], input?: string): Promise<Ran> => start(args, input).done;
  const json = async <T>(args: string[]): Promise<T> => {
    const ran = await cli([...args, '--json']);
    t.equal(ran.code, 0, `${args.join(' ')}: ${ran.stderr}`);
    t.equal(lines(ran.stdout).length, 1, `${args.join(' ')} prints one JSON document`);
    return JSON.parse(ran.stdout) as T;
  };

  await waitFor('a controller and three alive brokers', 60_000, async () => {
    const ran = await cli(['cluster', '--json']);
    if (ran.code !== 0) return undefined;
    const info = JSON.parse(ran.stdout) as { controller: number; brokers: Array<{ state: string }> };
    return info.controller > 0 && info.brokers.filter((b) => b.state === 'alive').length === 3 ? info : undefined;
  });
  const described = await cli(['cluster']);
  t.equal(described.code, 0);
  t.match(described.stdout, /^brokers: +3 \(3 alive, 0 fenced\)$/m);

  // Topics
  const created = await json<{ name: string; partitions: unknown[] }>(['topics', 'create', 't', '--config', 'retention.ms=86400000']);
  t.equal(created.name, 't');
  t.equal(created.partitions.length, 1);
  const again = await cli(['topics', 'create', 't']);
  t.equal(again.code, 1);
  t.match(again.stderr, /^driftwood: TOPIC_ALREADY_EXISTS: .*\n$/);
  t.ok((await json<Array<{ name: string }>>(['topics', 'list'])).some((topic) => topic.name === 't'));
  const list = await cli(['topics', 'list']);
  t.match(list.stdout, /^NAME +PARTITIONS +ID\n(.*\n)*t +1 +\S+$/m);
  const topic = await json<{ configs: Record<string, unknown>; partitions: Array<{ replicas: number[] }> }>(['topics', 'describe', 't']);
  t.equal(topic.configs['retention.ms'], 86_400_000);
  t.equal(topic.partitions[0]?.replicas.length, 3);
  t.match((await cli(['topics', 'describe', 't'])).stdout, /^PARTITION +LEADER +EPOCH +REPLICAS +ISR/m);
  const missing = await cli(['topics', 'describe', 'nope']);
  t.equal(missing.code, 1);
  t.match(missing.stderr, /^driftwood: UNKNOWN_TOPIC_OR_PARTITION: [^\n]*\n$/);

  // The check: three lines in, the same three lines out.
  const produced = await cli(['produce', 't'], 'a\nb\nc\n');
  t.equal(produced.code, 0, produced.stderr);
  t.equal(produced.stdout, '');
  t.match(produced.stderr, /^produced 3 records to t, 0 errors\n$/);
  const consumed = await cli(['consume', 't', '--from-beginning', '--max-messages', '3']);
  t.equal(consumed.code, 0, consumed.stderr);
  t.equal(consumed.stdout, 'a\nb\nc\n');

  // A keyed record with acks=1, read back as JSON from an explicit offset.
  t.equal((await cli(['produce', 't', '--key-separator', ':', '--acks', '1'], 'k:d\n')).code, 0);
  const record = await cli(['consume', 't', '--partition', '0', '--offset', '3', '--max-messages', '1', '--format', 'json']);
  t.equal(record.code, 0, record.stderr);
  t.match(JSON.parse(record.stdout), { topic: 't', partition: 0, offset: 3, key: 'k', value: 'd', headers: {} });

  // A group: the second run starts after what the first one printed and committed.
  const first = await cli(['consume', 't', '--group', 'g', '--from-beginning', '--max-messages', '2']);
  t.equal(first.code, 0, first.stderr);
  t.equal(first.stdout, 'a\nb\n');
  const second = await cli(['consume', 't', '--group', 'g', '--from-beginning', '--max-messages', '2']);
  t.equal(second.code, 0, second.stderr);
  t.equal(second.stdout, 'c\nd\n');
  const idle = await cli(['consume', 't', '--group', 'g', '--timeout-ms', '1000']);
  t.equal(idle.code, 0, idle.stderr);
  t.equal(idle.stdout, '', 'nothing left after the committed offset');

  // Groups
  const groups = await json<Array<{ group: string; state: string; members: number }>>(['groups', 'list']);
  t.match(groups.find((g) => g.group === 'g'), { state: 'empty', members: 0 });
  const group = await json<{ offsets: Array<{ topic: string; partition: number; committed: number; lag: number }> }>(['groups', 'describe', 'g']);
  t.match(group.offsets, [{ topic: 't', partition: 0, committed: 4, lag: 0 }]);
  t.match((await cli(['groups', 'describe', 'g'])).stdout, /^TOPIC +PARTITION +COMMITTED +LOG-END +LAG +MEMBER-ID\nt +0 +4 +4 +0 +-$/m);
  const dryRun = await json<{ dryRun: boolean; offsets: Array<{ partition: number; offset: number }> }>(['groups', 'reset-offsets', 'g', '--topic', 't', '--to-earliest', '--dry-run']);
  t.same(dryRun, { group: 'g', dryRun: true, offsets: [{ topic: 't', partition: 0, offset: 0 }] });
  const unchanged = await json<{ offsets: Array<{ committed: number }> }>(['groups', 'describe', 'g']);
  t.equal(unchanged.offsets[0]?.committed, 4, 'a dry run writes nothing');
  t.match((await cli(['groups', 'reset-offsets', 'g', '--topic', 't', '--to-offset', '1'])).stdout, /^t +0 +1$/m);
  t.equal((await json<{ offsets: Array<{ committed: number }> }>(['groups', 'describe', 'g'])).offsets[0]?.committed, 1);

  // Until SIGTERM: it prints what there is, then commits and leaves the group.
  const running = start(['consume', 't', '--group', 'h', '--from-beginning']);
  await waitFor('four records printed', 20_000, () => Promise.resolve(lines(running.stdout()).length >= 4 ? true : undefined));
  running.child.kill('SIGTERM');
  const stopped = await running.done;
  t.equal(stopped.code, 0, stopped.stderr);
  t.equal(stopped.stdout, 'a\nb\nc\nd\n');
  t.match(stopped.stderr, /consumed 4 records/);
  const left = await json<{ state: string; members: unknown[]; offsets: Array<{ committed: number }> }>(['groups', 'describe', 'h']);
  t.equal(left.members.length, 0, 'the member left the group');
  t.equal(left.offsets[0]?.committed, 4);
  // A reader that goes away (`| head -1`) stops it as an interrupt would: no EPIPE stack trace.
  const piped = start(['consume', 't', '--group', 'p', '--from-beginning']);
  await waitFor('a record printed', 20_000, () => Promise.resolve(piped.stdout().length > 0 ? true : undefined));
  piped.child.stdout?.destroy();
  // A writer learns that its reader is gone only when it writes: give it one more record.
  t.equal((await cli(['produce', 't', '--acks', '1'], 'e\n')).code, 0);
  const ended = await piped.done;
  t.equal(ended.code, 0, ended.stderr);
  t.notMatch(ended.stderr, /EPIPE|Error| {4}at /);
  t.equal(((await json<{ members: unknown[] }>(['groups', 'describe', 'p'])).members).length, 0, 'it left the group');
  t.equal((await cli(['groups', 'delete', 'h'])).code, 0);
  const gone = await cli(['groups', 'describe', 'h']);
  t.equal(gone.code, 1);
  t.match(gone.stderr, /^driftwood: GROUP_ID_NOT_FOUND: [^\n]*\n$/);

  // Usage errors: exit code 2, one line, nothing sent.
  const bad = await cli(['produce', 't', '--acks', '7']);
  t.equal(bad.code, 2);
  t.equal(lines(bad.stderr).length, 1);
  t.equal((await cli(['topics', 'delete', 't'])).code, 0);
  t.notOk((await json<Array<{ name: string }>>(['topics', 'list'])).some((listed) => listed.name === 't'));
});
