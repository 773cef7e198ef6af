// The consumer-group scenario of the issue on real processes: two `driftwood consume --group`
// processes split a topic of 6 partitions; one is killed with kill -9; the other takes over
// its partitions within the session timeout (10 s) and continues from the committed offsets,
// so every record produced before and after the kill is printed by one of them (some twice:
// what the killed one printed after its last commit); a second group gets every record.
import { spawn, type ChildProcess } from 'node:child_process';
import t from 'tap';
import { Producer } from '../../src/client/producer.js';
import { BIN, killAll, waitFor } from '../helpers/processes.js';
import { clientCluster, createServedTopic } from '../client/helpers.js';

const TOPIC = 'jobs';
const PARTITIONS = 6;
const RECORDS_BEFORE = 300;
const RECORDS_AFTER = 300;
/** The session timeout of `driftwood consume --group` (the client's default), plus a heartbeat, the coordinator's sweep and slack for a busy machine. */
const TAKEOVER_MS_MAX = 10_000 + 1000 + 1000 + 3000;

interface Printed { partition: number; offset: number; value: string }

void t.test('two consumer processes share a group; kill -9 of one, the other takes over with nothing skipped; a second group gets everything', { timeout: 150_000 }, async (t) => {
  const { bootstrap, admin } = await clientCluster(t, 'groups', 3);
  await createServedTopic(admin, TOPIC, PARTITIONS, 3);
  const processes = new Set<ChildProcess>();
  const errors: string[] = [];
  t.teardown(() => {
    killAll(processes);
    if (errors.length > 0) t.comment(`consumer stderr:\n${errors.join('')}`);
  });
  const consume = (group: string): { child: ChildProcess; printed: Printed[] } => {
    const child = spawn(process.execPath, [BIN, 'consume', TOPIC, '--group', group, '--from-beginning', '--format', 'json', '--bootstrap', bootstrap.join(',')], { stdio: ['ignore', 'pipe', 'pipe'] });
    processes.add(child);
    child.once('exit', () => processes.delete(child));
    const printed: Printed[] = [];
    child.stderr.on('data', (chunk: Buffer) => { errors.push(`[${group}] ${chunk.toString()}`); });
    let pending = '';
    child.stdout.on('data', (chunk: Buffer) => {
      pending += chunk.toString();
      const lines = pending.split('\n');
      pending = lines.pop() ?? '';
      for (const line of lines) if (line.length > 0) printed.push(JSON.parse(line) as Printed);
    });
    return { child, printed };
  };

  const producer = new Producer({ bootstrap, lingerMs: 5 });
  t.teardown(() => producer.close());
  let serial = 0;
  const produce = async (count: number): Promise<void> => {
    await Promise.all(Array.from({ length: count }, () => {
      const value = `job-${serial++}`;
      return producer.send({ topic: TOPIC, key: value, value });
    }));
  };
  await produce(RECORDS_BEFORE);

  const a = consume('workers');
  const b = consume('workers');
  const assignment = async (): Promise<number[]> => {
    const group = await admin.describeGroup('workers');
    return group.members.map((m) => m.assignment.reduce((sum, tp) => sum + tp.partitions.length, 0)).sort();
  };
  let held: number[] = [];
  await waitFor('both members to hold 3 partitions each', 60_000, async () => {
    held = await assignment().catch(() => []); // GROUP_ID_NOT_FOUND until a process has joined
    return held.length === 2 && held[0] === 3 && held[1] === 3 ? true : undefined;
  });

  const killedAt = Date.now();
  a.child.kill('SIGKILL');
  await produce(RECORDS_AFTER);
  await waitFor('the surviving member to hold all 6 partitions', TAKEOVER_MS_MAX + 5000, async () => {
    const held = await assignment();
    return held.length === 1 && held[0] === PARTITIONS ? true : undefined;
  });
  const takeoverMs = Date.now() - killedAt;
  t.ok(takeoverMs <= TAKEOVER_MS_MAX, `took over ${takeoverMs} ms after kill -9 (session 10 s)`);

  const total = RECORDS_BEFORE + RECORDS_AFTER;
  const values = (printed: Printed[]): Set<string> => new Set(printed.map((p) => p.value));
  await waitFor('every record printed by one of the two members', 60_000, () => {
    const all = new Set([...values(a.printed), ...values(b.printed)]);
    return Promise.resolve(all.size === total ? true : undefined);
  });
  // Nothing skipped: per partition, the offsets printed by the group run without a gap from 0.
  const byPartition = new Map<number, Set<number>>();
  for (const p of [...a.printed, ...b.printed]) byPartition.set(p.partition, (byPartition.get(p.partition) ?? new Set()).add(p.offset));
  for (const [partition, offsets] of byPartition) {
    const max = Math.max(...offsets);
    t.equal(offsets.size, max + 1, `partition ${partition}: offsets 0..${max} all printed`);
  }
  const twice = a.printed.length + b.printed.length - total;
  t.ok(twice >= 0, `${twice} records printed twice (the killed member's, after its last commit)`);

  const audit = consume('audit');
  await waitFor('the second group to print every record', 60_000, () => Promise.resolve(values(audit.printed).size === total ? true : undefined));
  t.equal(audit.printed.length, total, 'the second group printed each record once');
  audit.child.kill('SIGTERM');
  b.child.kill('SIGTERM');
});
