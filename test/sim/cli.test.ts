import t from 'tap';
import { capture } from '../helpers/capture.js';
import { parseSeeds, runSimCommand } from '../../sim/cli.js';


void t.test('sim command: bugs list, one seed as JSON, bad arguments', async (t) => {
  const list = capture();
  t.equal(await runSimCommand(['--list-bugs'], list.io), 0);
  t.match(list.out.join(''), /raft-vote-twice[\s\S]*raft-commit-old-term[\s\S]*raft-ack-before-persist/);
  const one = capture();
  t.equal(await runSimCommand(['raft', '--seed', '3', '--fault-ms', '3000', '--heal-ms', '3000', '--json'], one.io), 0);
  const summary = JSON.parse(one.out.join('')) as Record<string, unknown>;
  t.match(summary, { seeds: 1, violations: 0, traceHash: /^[0-9a-f]{16}$/ });
  for (const key of ['simulatedSeconds', 'wallSeconds', 'speedup', 'electionMsP50', 'electionMsP99']) t.ok(key in summary, key);
  const text = capture();
  t.equal(await runSimCommand(['raft', '--seed', '3', '--fault-ms', '0', '--heal-ms', '2000'], text.io), 0);
  t.match(text.out.join(''), /violations\s+0/);
  const buggy = capture();
  t.equal(await runSimCommand(['raft', '--seeds', '1..40', '--bug', 'raft-vote-twice', '--json'], buggy.io), 1, 'a violation exits 1');
  t.match(buggy.err.join(''), /replay: driftwood sim raft --seed \d+ --nodes 5 --bug raft-vote-twice/);
  await t.rejects(runSimCommand(['raft', '--bug', 'no-such-bug'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['raft', '--nodes', '9'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['other'], capture().io), { name: 'SimUsageError' });
  await t.rejects(runSimCommand(['raft', '--heal-ms', '5'], capture().io), { name: 'SimUsageError' });
  t.throws(() => parseSeeds('5..1'), { name: 'SimUsageError' });
  t.throws(() => parseSeeds('abc'), { name: 'SimUsageError' });
  t.throws(() => parseSeeds('1..99999999'), { name: 'SimUsageError' });
  t.same(parseSeeds('4..6'), [4, 5, 6]);
});
