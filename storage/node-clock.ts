// The real Clock: the system's wall clock and Node's timers.
import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from './clock.js';

const TIMER_DELAY_MS_MAX = 2 ** 31 - 1;

export const nodeClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    // Node turns a delay past 2^31-1 ms into 1 ms (with only a warning); fire at the limit
    // instead, ~24.8 days out, which every caller treats as "not soon".
    const timer = setTimeout(callback, Math.min(delayMs, TIMER_DELAY_MS_MAX));
    return { cancel: () => { clearTimeout(timer); } };
  },
};
