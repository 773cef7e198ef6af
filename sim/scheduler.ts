// The simulator's one event queue: events ordered by (virtual time, sequence), each run to
// completion with the microtask queue drained before the next, virtual time jumping to the
// next event. Nothing in a simulated run touches a real timer or real I/O, so a seed replays
// exactly: the same events in the same order, the same trace hash.
import assert from 'node:assert/strict';
import type { Clock, TimerHandle } from '../storage/clock.js';
import { Fnv64 } from './hash.js';

export interface SimEvent {
  readonly atMs: number;
  readonly sequence: number;
  readonly label: string;
  readonly run: () => void;
  cancelled: boolean;
}

/** A binary min-heap on (atMs, sequence). */
class EventHeap {
  private readonly items: SimEvent[] = [];

  get size(): number {
    return this.items.length;
  }

  push(event: SimEvent): void {
    this.items.push(event);
    let at = this.items.length - 1;
    while (at > 0) {
      const parent = (at - 1) >> 1;
      if (!before(this.items[at], this.items[parent])) break;
      this.swap(at, parent);
      at = parent;
    }
  }

  pop(): SimEvent | undefined {
    const top = this.items[0];
    const last = this.items.pop();
    if (top === undefined || last === undefined || this.items.length === 0) return top;
    this.items[0] = last;
    let at = 0;
    for (;;) {
      const left = at * 2 + 1;
      const right = left + 1;
      let smallest = at;
      if (left < this.items.length && before(this.items[left], this.items[smallest])) smallest = left;
      if (right < this.items.length && before(this.items[right], this.items[smallest])) smallest = right;
      if (smallest === at) break;
      this.swap(at, smallest);
      at = smallest;
    }
    return top;
  }

  private swap(a: number, b: number): void {
    const item = this.items[a];
    const other = this.items[b];
    assert.ok(item !== undefined && other !== undefined);
    this.items[a] = other;
    this.items[b] = item;
  }
}

function before(a: SimEvent | undefined, b: SimEvent | undefined): boolean {
  assert.ok(a !== undefined && b !== undefined);
  return a.atMs < b.atMs || (a.atMs === b.atMs && a.sequence < b.sequence);
}

/**
 * Lets the microtasks and nextTicks an event started run before the next event. Node runs a
 * nextTick only once the microtask queue is empty, so resolving through one waits for the
 * whole chain, without the cost of a turn of the event loop.
 */
function drainMicrotasks(): Promise<void> {
  return new Promise((resolve) => { process.nextTick(resolve); });
}

/** A full turn of the event loop, for anything in the run that waits on one (rare). */
function yieldToEventLoop(): Promise<void> {
  return new Promise((resolve) => setImmediate(resolve));
}

/** Events between two full turns of the event loop; fixed, so a run replays exactly. */
const EVENTS_PER_LOOP_TURN = 256;

export class Scheduler {
  private timeMs: number;
  private sequence = 0;
  private readonly queue = new EventHeap();
  private readonly trace = new Fnv64();
  private eventsRun = 0;

  constructor(startMs = 0) {
    this.timeMs = startMs;
  }

  get nowMs(): number {
    return this.timeMs;
  }

  get eventCount(): number {
    return this.eventsRun;
  }

  get pending(): number {
    return this.queue.size;
  }

  /** Runs `run` at virtual time `atMs` (not before now). */
  at(atMs: number, label: string, run: () => void): SimEvent {
    assert.ok(Number.isFinite(atMs), `event time must be finite: ${label}`);
    const event: SimEvent = { atMs: Math.max(atMs, this.timeMs), sequence: this.sequence++, label, run, cancelled: false };
    this.queue.push(event);
    return event;
  }

  after(delayMs: number, label: string, run: () => void): SimEvent {
    assert.ok(delayMs >= 0, `delay must be >= 0: ${label}`);
    return this.at(this.timeMs + delayMs, label, run);
  }

  /** Adds a line to the trace hash: what happened, in order, so two runs can be compared. */
  record(line: string): void {
    this.trace.update(`${Math.round(this.timeMs * 1000)} ${line}\n`);
    this.onRecord?.(this.timeMs, line);
  }

  /** Sees every trace line as it is recorded (`driftwood sim ... --trace`). */
  onRecord: ((timeMs: number, line: string) => void) | null = null;

  traceHash(): string {
    return this.trace.hex();
  }

  /**
   * Runs events in order until virtual time passes `untilMs`, the queue empties, `stop()`
   * says so (checked between events) or `eventsMax` events ran (a limit on everything).
   */
  async run(options: { untilMs: number; eventsMax: number; stop?: () => boolean }): Promise<void> {
    assert.ok(options.untilMs >= this.timeMs, `run until ${options.untilMs} is before now (${this.timeMs}): time only moves forward`);
    const startCount = this.eventsRun;
    for (;;) {
      if (options.stop?.() === true) return;
      const next = this.queue.pop();
      if (next === undefined) {
        if (Number.isFinite(options.untilMs)) this.timeMs = options.untilMs;
        return;
      }
      if (next.atMs > options.untilMs) {
        this.queue.push(next);
        this.timeMs = options.untilMs;
        return;
      }
      if (next.cancelled) continue;
      assert.ok(this.eventsRun - startCount < options.eventsMax, `more than ${options.eventsMax} events: a livelock?`);
      this.timeMs = next.atMs;
      this.eventsRun += 1;
      next.run();
      await drainMicrotasks();
      if (this.eventsRun % EVENTS_PER_LOOP_TURN === 0) await yieldToEventLoop();
    }
  }
}

/**
 * One node's Clock on the scheduler. Its wall clock can be set apart from virtual time (a
 * clock jump); its timers die with the node (crash) and wait while it is paused.
 */
export class SimClock implements Clock {
  private wallOffsetMs = 0;
  private readonly timers = new Set<SimEvent>();
  private paused: Array<() => void> | null = null;

  constructor(private readonly scheduler: Scheduler, readonly name: string) {}

  nowMs(): number {
    return this.scheduler.nowMs + this.wallOffsetMs;
  }

  monotonicMs(): number {
    return this.scheduler.nowMs;
  }

  setTimer(delayMs: number, callback: () => void): TimerHandle {
    const event = this.scheduler.after(delayMs, `${this.name} timer`, () => {
      this.timers.delete(event);
      if (this.paused !== null) this.paused.push(callback);
      else callback();
    });
    this.timers.add(event);
    return { cancel: () => { event.cancelled = true; this.timers.delete(event); } };
  }

  /** Moves this node's wall clock by `deltaMs` (NTP step, VM migration). */
  jump(deltaMs: number): void {
    this.wallOffsetMs += deltaMs;
  }

  /** The process stops (SIGSTOP): timers that fall due are held until resume(). */
  pause(): void {
    this.paused ??= [];
  }

  /** The process continues: held timers fire now, in the order they fell due. */
  resume(): void {
    const held = this.paused ?? [];
    this.paused = null;
    for (const callback of held) this.scheduler.after(0, `${this.name} resumed timer`, callback);
  }

  get isPaused(): boolean {
    return this.paused !== null;
  }

  /** The process died: none of its timers will fire. */
  cancelAll(): void {
    for (const event of this.timers) event.cancelled = true;
    this.timers.clear();
    this.paused = null;
  }
}
