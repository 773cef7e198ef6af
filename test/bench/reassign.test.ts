// `driftwood bench reassign` end to end with the built binary: a small partition moved to a
// third replica without and with a throttle on its own four-node cluster. The JSON has the
// documented shape, the steady producer saw no error, and the throttled copy kept to its rate
// (load can only slow a copy, so the bound holds on a busy machine). No performance targets.
import type { ChildProcess } from 'node:child_process';
import t from 'tap';
import { killAll } from '../helpers/processes.js';
import { runDriftwood } from './helpers.js';

const RUN_MS_MAX = 110_000;
const BYTES = 8 * 1024 * 1024;
const THROTTLE = 2 * 1024 * 1024;

void t.test('bench reassign --json: shape, no producer error, the throttle holds', { timeout: 120_000 }, async (t) => {
  const processes = new Set<ChildProcess>();
  t.teardown(() => { killAll(processes); });
  const { code, stdout, stderr } = await runDriftwood(['bench', 'reassign', '--json', '--bytes', String(BYTES), '--throttle', String(THROTTLE), '--records-per-sec', '200'], RUN_MS_MAX, processes);
  t.equal(code, 0, `exit code (stderr: ${stderr})`);
  t.match(stderr, /moving to \[\d,\d,\d\] without a throttle/, 'progress lines tell of each move');
  const result = JSON.parse(stdout) as { partitionBytes: number; unthrottled: { bytes: number; seconds: number; mbPerSec: number; producerLatencyMs: { p99: number } }; throttled: { bytes: number; seconds: number; mbPerSec: number; throttleBytesPerSec: number }; producerErrors: number };
  t.ok(result.partitionBytes >= BYTES, `the partition held ${result.partitionBytes} bytes`);
  t.ok(result.unthrottled.seconds > 0 && result.unthrottled.mbPerSec > 0, `unthrottled: ${result.unthrottled.mbPerSec} MB/s`);
  t.type(result.unthrottled.producerLatencyMs.p99, 'number');
  t.equal(result.throttled.throttleBytesPerSec, THROTTLE);
  // The bucket starts with one second of tokens: the copy cannot beat bytes / rate - 1 s.
  const floorSeconds = result.throttled.bytes / THROTTLE - 1;
  t.ok(result.throttled.seconds >= floorSeconds, `throttled: ${result.throttled.seconds} s for ${result.throttled.bytes} bytes at ${THROTTLE} B/s (at least ${floorSeconds.toFixed(1)} s)`);
  t.equal(result.producerErrors, 0, 'the steady producer saw no error');
});
