// The Clock port: core code reads time and sets timers only through it, so the simulator can
// run the same code on virtual time (DESIGN.md, Ports). node-clock.ts is the real one.

export interface TimerHandle {
  cancel(): void;
}

export interface Clock {
  /** Wall-clock milliseconds since the epoch (record timestamps, retention by time). */
  nowMs(): number;
  /** Monotonic milliseconds for measuring intervals; never goes backwards. */
  monotonicMs(): number;
  /** Calls `callback` once after `delayMs`; cancel() before it fires stops it. */
  setTimer(delayMs: number, callback: () => void): TimerHandle;
}
