// The real Clock: the system's wall clock and Node's timers.
import { performance } from 'node:perf_hooks';
import type { Clock, TimerHandle } from './clock.js';

export const nodeClock: Clock = {
  nowMs: () => Date.now(),
  monotonicMs: () => performance.now(),
  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const timer = setTimeout(callback, delayMs);
    return { cancel: () => { clearTimeout(timer); } };
  },
};
