import t from 'tap';
import { nodeClock } from '../../storage/node-clock.js';

void t.test('the real clock reads time and fires and cancels timers', async (t) => {
  const before = Date.now();
  t.ok(Math.abs(nodeClock.nowMs() - before) < 1000);
  const start = nodeClock.monotonicMs();
  await new Promise<void>((resolve) => { nodeClock.setTimer(5, resolve); });
  t.ok(nodeClock.monotonicMs() - start >= 4, 'the timer waited');
  let fired = false;
  const timer = nodeClock.setTimer(1, () => { fired = true; });
  timer.cancel();
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.notOk(fired, 'a cancelled timer does not fire');
  let overflowFired = false;
  const far = nodeClock.setTimer(2 ** 40, () => { overflowFired = true; });
  await new Promise((resolve) => setTimeout(resolve, 20));
  t.notOk(overflowFired, 'a delay past the 32-bit limit does not fire at once');
  far.cancel();
});
