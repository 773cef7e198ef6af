// `driftwood bench failover` end to end with the built binary: a short run on its own
// three-node cluster; the JSON has the documented shape, the leader of partition 0 was
// killed, partition 0 was acknowledged again after it, and no acknowledged record is missing.
// No performance thresholds: the window is only checked to be a measured, positive time.
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { killAll } from '../helpers/processes.js';
import { runDriftwood } from './helpers.js';

/** The run below takes ~15 s (startup, 2 s warm-up, 8 s after the kill, read-back). */
const RUN_MS_MAX = 55_000;

void t.test('bench failover --json: shape, nothing lost, a positive window', { timeout: 60_000 }, async (t) => {
  const processes = new Set<ChildProcess>();
  t.teardown(() => { killAll(processes); });
  const { code, stdout, stderr } = await runDriftwood(['bench', 'failover', '--json', '--records-per-sec', '500', '--warmup-seconds', '2', '--after-kill-seconds', '8'], RUN_MS_MAX, processes);
  t.equal(code, 0, `exit code (stderr: ${stderr})`);
  t.match(stderr, /killed broker \d \(leader of partition 0\)/, 'a progress line tells of the kill');
  const result = JSON.parse(stdout) as Record<string, unknown>;
  for (const key of ['windowMs', 'longestAckGapMs', 'acknowledged', 'lost', 'duplicates', 'errors']) t.type(result[key], 'number', `${key} is a number`);
  t.equal(result.lost, 0, 'no acknowledged record lost');
  t.equal(result.duplicates, 0, 'no record written twice');
  t.ok((result.windowMs as number) > 100, `the window spans the outage, not an answer already on its way (${String(result.windowMs)} ms)`);
  // The last acknowledgement before the kill came before it, so the gap around the kill is at least the window.
  t.ok((result.longestAckGapMs as number) >= (result.windowMs as number) - 1, 'the longest gap is at least the window');
  t.ok((result.acknowledged as number) > 0 && (result.acknowledged as number) <= (result.sent as number), 'acknowledged within what was sent');
  t.not(result.killedBroker, result.newLeader, 'partition 0 has another leader after the kill');
});
