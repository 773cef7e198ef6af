// `driftwood chaos` end to end with the built binary, CI-sized: 30 s of faults on its own
// three-node cluster, then the checks. The seed is fixed so that the four kinds of fault
// all fit in 30 s; the run must pass every check, report the documented counts and leave no
// process or data directory behind.
import type { ChildProcess } from 'node:child_process';
import { readdir } from 'node:fs/promises';
import os from 'node:os';
import t from 'tap';
import { runDriftwood } from '../bench/helpers.js';
import { killAll } from '../helpers/processes.js';

/**
 * Startup ~5 s, 30 s of faults, recovery, drain, stop and checks: ~40 s on 2 cores (three runs
 * of 40-41 s with a load average near 12). The rest is room for a slower CI machine, so
 * that the run fails on its checks and not on this bound.
 */
const RUN_MS_MAX = 150_000;
const SEED = 7;

async function chaosDirs(): Promise<string[]> {
  return (await readdir(os.tmpdir())).filter((name) => name.startsWith('driftwood-chaos-'));
}

void t.test('driftwood chaos --duration-s 30 --json passes and reports', { timeout: RUN_MS_MAX + 10_000 }, async (t) => {
  const processes = new Set<ChildProcess>();
  t.teardown(() => { killAll(processes); });
  const dirsBefore = new Set(await chaosDirs());
  const { code, stdout, stderr } = await runDriftwood(['chaos', '--duration-s', '30', '--seed', String(SEED), '--json'], RUN_MS_MAX, processes);
  t.equal(code, 0, code === 0 ? 'exit code 0' : `exit code (stderr: ${stderr.slice(-4000)})`);
  t.match(stderr, new RegExp(`seed ${SEED} \\(replay: driftwood chaos --seed ${SEED}`), 'the seed is printed first');
  t.match(stderr, /faults \d+ \(kill-one \d+, kill-two \d+, pause \d+, cut \d+\); sent \d+, acknowledged \d+/, 'progress lines');
  const result = JSON.parse(stdout) as Record<string, unknown>;
  t.equal(result.passed, true, `passed (violations: ${JSON.stringify(result.violations)})`);
  const faults = result.faults as Record<string, number>;
  for (const kind of ['kill-one', 'kill-two', 'pause', 'cut']) t.ok((faults[kind] ?? 0) >= 1, `a ${kind} fault was injected`);
  t.ok((result.recordsAcknowledged as number) > 1000, 'records were acknowledged');
  t.ok((result.recordsInLog as number) >= (result.recordsAcknowledged as number), 'the log holds at least what was acknowledged');
  for (const zero of ['lost', 'duplicates', 'outOfOrder', 'consumedNotInLog', 'acknowledgedNotConsumed', 'commitsBackwards', 'replicasDiverged', 'unexpectedNodeExits', 'violationCount']) t.equal(result[zero], 0, `${zero} is 0`);
  t.equal(result.replicasCompared, 3 * (result.partitions as number), 'every replica of every partition compared');
  t.ok((result.commitsChecked as number) > 0, 'committed offsets were read back');
  t.ok((result.recordsConsumed as number) >= (result.recordsAcknowledged as number), 'the group consumed at least everything acknowledged');
  const leftover = (await chaosDirs()).filter((name) => !dirsBefore.has(name));
  t.same(leftover, [], 'the data directory is removed');
});
