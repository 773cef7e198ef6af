// Virtual time for the simulator and tests: time moves only when told to, and timers fire in
// (due time, creation order) order as it passes them, so a run replays exactly.
import assert from 'node:assert/strict';
import type { Clock, TimerHandle } from '../storage/clock.js';

interface Timer {
  readonly dueMs: number;
  readonly sequence: number;
  readonly callback: () => void;
  cancelled: boolean;
}

export class VirtualClock implements Clock {
  private timeMs: number;
  private sequence = 0;
  private timers: Timer[] = [];

  constructor(startMs = 1_700_000_000_000) {
    this.timeMs = startMs;
  }

  nowMs(): number {
    return this.timeMs;
  }

  monotonicMs(): number {
    return this.timeMs;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    assert.ok(Number.isFinite(delayMs) && delayMs >= 0, `timer delay must be >= 0, got ${delayMs}`);
    const timer: Timer = { dueMs: this.timeMs + delayMs, sequence: this.sequence++, callback, cancelled: false };
    this.timers.push(timer);
    return { cancel: () => { timer.cancelled = true; } };
  }

  /** Timers not yet fired or cancelled. */
  get pendingTimers(): number {
    return this.timers.filter((timer) => !timer.cancelled).length;
  }

  /** Moves time forward by `deltaMs`, firing every timer that falls due on the way. */
  advance(deltaMs: number): void {
    assert.ok(deltaMs >= 0, 'virtual time does not go backwards through advance()');
    const targetMs = this.timeMs + deltaMs;
    for (let timer = this.nextDue(targetMs); timer !== undefined; timer = this.nextDue(targetMs)) {
      this.timers = this.timers.filter((other) => other !== timer);
      this.timeMs = Math.max(this.timeMs, timer.dueMs);
      timer.callback();
    }
    this.timeMs = targetMs;
  }

  /** Sets the wall clock (a clock jump); timers keep their due times. */
  jumpTo(timeMs: number): void {
    this.timeMs = timeMs;
  }

  private nextDue(limitMs: number): Timer | undefined {
    let best: Timer | undefined;
    for (const timer of this.timers) {
      if (timer.cancelled || timer.dueMs > limitMs) continue;
      if (best === undefined || timer.dueMs < best.dueMs || (timer.dueMs === best.dueMs && timer.sequence < best.sequence)) best = timer;
    }
    return best;
  }
}
