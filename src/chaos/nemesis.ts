// The chaos nemesis: one fault at a time, each undone before the next, until the time is up.
// A seed drives every choice it makes (kind, victim pick, durations, gaps), so a run's
// schedule replays with the same seed; which node "the controller" or "a leader" is at that
// moment depends on the run, so a replay aims at the same roles, not always the same ids.
import assert from 'node:assert/strict';

export const faultKinds = ['kill-one', 'kill-two', 'pause', 'cut'] as const;
export type FaultKind = (typeof faultKinds)[number];

/** What the nemesis does to the cluster; the chaos run backs it with real processes. */
export interface NemesisTarget {
  readonly ids: readonly number[];
  /** The active controller and the partition leaders as the cluster says now (empty when it cannot say). */
  roles(): Promise<{ controller: number | null; leaders: number[] }>;
  kill(id: number): Promise<void>;
  restart(id: number): void;
  pause(id: number): void;
  resume(id: number): void;
  cut(id: number): void;
  heal(id: number): void;
}

export interface NemesisOptions {
  readonly seed: number;
  readonly target: NemesisTarget;
  /** When the last fault must be over, in the run's clock (ms). */
  readonly endMs: number;
  readonly nowMs: () => number;
  readonly sleep: (ms: number) => Promise<void>;
  readonly log: (line: string) => void;
  readonly stopped: () => boolean;
  /** Counted here as faults are injected, so that progress lines can show them. */
  readonly counts: FaultCounts;
}

export type FaultCounts = Record<FaultKind, number>;

export function noFaults(): FaultCounts {
  return { 'kill-one': 0, 'kill-two': 0, pause: 0, cut: 0 };
}

/** How long each fault lasts, [min, max] in ms, as the issue asks. */
const FAULT_MS: Readonly<Record<FaultKind, readonly [number, number]>> = {
  'kill-one': [1000, 5000],
  'kill-two': [1000, 5000],
  pause: [1000, 8000],
  cut: [2000, 10_000],
};
/** The quiet time between two faults, [min, max] in ms. */
const GAP_MS: readonly [number, number] = [1000, 4000];
/** A fault shorter than this is not worth starting before the end. */
const FAULT_MS_MIN = 500;
/** Faults one run injects at most (about a day of them). */
const FAULTS_MAX = 20_000;

/** mulberry32: small, fast and good enough to pick faults; the same seed gives the same sequence. */
export class SeededRng {
  private state: number;

  constructor(seed: number) {
    assert.ok(Number.isSafeInteger(seed), 'the seed is an integer');
    this.state = seed >>> 0;
  }

  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  between(min: number, max: number): number {
    assert.ok(min <= max, 'between() has min <= max');
    return min + Math.floor(this.next() * (max - min + 1));
  }

  pick<T>(items: readonly T[]): T {
    assert.ok(items.length > 0, 'pick() needs something to pick');
    return items[this.between(0, items.length - 1)] as T;
  }
}

/**
 * The kinds in the order they are injected: every kind once first (in a seeded order), so
 * that even a short run sees each of them, then uniformly at random.
 */
export function faultOrder(rng: SeededRng, count: number): FaultKind[] {
  const first = [...faultKinds];
  for (let i = first.length - 1; i > 0; i -= 1) {
    const j = rng.between(0, i);
    [first[i], first[j]] = [first[j] as FaultKind, first[i] as FaultKind];
  }
  const order = first.slice(0, count);
  while (order.length < count) order.push(rng.pick(faultKinds));
  return order;
}

/** Runs faults until endMs; returns how many of each kind were injected. */
export async function runNemesis(options: NemesisOptions): Promise<FaultCounts> {
  const rng = new SeededRng(options.seed);
  const counts = options.counts;
  // The kinds come from their own stream, so the victims and durations drawn do not shift them.
  const order = faultOrder(new SeededRng(options.seed ^ 0x5bd1e995), FAULTS_MAX);
  for (const [injected, kind] of order.entries()) {
    await options.sleep(rng.between(GAP_MS[0], GAP_MS[1]));
    const [minMs, maxMs] = FAULT_MS[kind];
    const durationMs = Math.min(rng.between(minMs, maxMs), options.endMs - options.nowMs());
    if (options.stopped() || durationMs < FAULT_MS_MIN) return counts;
    counts[kind] += 1;
    await inject(kind, durationMs, rng, options, injected + 1);
  }
  return counts;
}

async function inject(kind: FaultKind, durationMs: number, rng: SeededRng, options: NemesisOptions, n: number): Promise<void> {
  const { target, log } = options;
  const seconds = (durationMs / 1000).toFixed(1);
  if (kind === 'kill-one' || kind === 'kill-two') {
    const victims = kind === 'kill-one' ? [rng.pick(target.ids)] : twoOf(target.ids, rng);
    log(`fault ${n}: kill -9 node ${victims.join(' and node ')}, restart after ${seconds} s`);
    for (const id of victims) await target.kill(id);
    await options.sleep(durationMs);
    for (const id of victims) target.restart(id);
    return;
  }
  const { id, role } = await victim(rng, target);
  if (kind === 'pause') {
    log(`fault ${n}: SIGSTOP node ${id} (${role}) for ${seconds} s`);
    target.pause(id);
    await options.sleep(durationMs);
    target.resume(id);
    return;
  }
  log(`fault ${n}: cut node ${id} (${role}) off its peers for ${seconds} s`);
  target.cut(id);
  await options.sleep(durationMs);
  target.heal(id);
}

function twoOf(ids: readonly number[], rng: SeededRng): number[] {
  const first = rng.pick(ids);
  const second = rng.pick(ids.filter((id) => id !== first));
  return [first, second];
}

/** The controller or a partition leader when the cluster names them (the interesting victims), else any node. */
async function victim(rng: SeededRng, target: NemesisTarget): Promise<{ id: number; role: string }> {
  // Drawn before asking, so that the schedule's random draws do not depend on the answer.
  const wantController = rng.next() < 0.5;
  const anyId = rng.pick(target.ids);
  const leaderDraw = rng.next();
  const roles = await target.roles();
  if (wantController && roles.controller !== null && target.ids.includes(roles.controller)) return { id: roles.controller, role: 'controller' };
  const leaders = roles.leaders.filter((id) => target.ids.includes(id));
  if (leaders.length > 0) return { id: leaders[Math.floor(leaderDraw * leaders.length)] as number, role: 'a partition leader' };
  return { id: anyId, role: 'any node' };
}
