// Retries: which broker answers are worth another try, how long to wait before it (Kafka's
// ExponentialBackoff: base * 2^attempt, capped, with 20% jitter so many clients that failed
// together do not come back together), and timers that a closing client can cancel at once.
import assert from 'node:assert/strict';
import { DriftwoodError, isDriftwoodError, type ErrorCode } from '../../storage/errors.js';

/** Answers that mean the cached metadata (leaders, brokers) may be stale: refresh it, then retry. */
const STALE_METADATA_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  'NOT_LEADER_OR_FOLLOWER',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'FENCED_LEADER_EPOCH',
  'NETWORK_EXCEPTION',
  'UNKNOWN_LEADER_EPOCH',
  // The leader's log failed; the controller moves the leadership (Kafka's KafkaStorageException is an InvalidMetadataException).
  'KAFKA_STORAGE_ERROR',
]);

/** Answers after which the same request may succeed later (Kafka's RetriableException family). */
const RETRIABLE_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>([
  ...STALE_METADATA_CODES,
  'REQUEST_TIMED_OUT',
  'NOT_ENOUGH_REPLICAS',
  'NOT_ENOUGH_REPLICAS_AFTER_APPEND',
  'OFFSET_NOT_AVAILABLE',
  'LOG_CLOSED',
  'NOT_CONTROLLER',
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
]);

export function isRetriable(error: unknown): boolean {
  return isDriftwoodError(error) && RETRIABLE_CODES.has(error.code);
}

export function needsMetadataRefresh(error: unknown): boolean {
  return isDriftwoodError(error) && STALE_METADATA_CODES.has(error.code);
}

const JITTER = 0.2;
/** Doubling past this many attempts changes nothing but could overflow. */
const EXPONENT_MAX = 30;

export interface Backoff {
  readonly retryBackoffMs: number;
  readonly retryBackoffMsMax: number;
}

/** The wait before retry number `attempt` (0 for the first retry). */
export function backoffMs(attempt: number, backoff: Backoff): number {
  assert(Number.isInteger(attempt) && attempt >= 0, 'attempt is a non-negative integer');
  const { retryBackoffMs, retryBackoffMsMax } = backoff;
  assert(retryBackoffMsMax >= retryBackoffMs);
  const term = Math.min(retryBackoffMs * 2 ** Math.min(attempt, EXPONENT_MAX), retryBackoffMsMax);
  // No jitter when base and cap are equal: a fixed backoff was asked for.
  const jitter = retryBackoffMs === retryBackoffMsMax ? 1 : 1 - JITTER + Math.random() * 2 * JITTER;
  return Math.round(term * jitter);
}

/**
 * Runs `call` until it succeeds, retrying the failures `retriable` accepts with backoff, the
 * last try no later than `deadlineMs` (monotonic); then the last error. Stops at once when the
 * timers close (the client is closing).
 */
export async function retryUntil<T>(call: () => Promise<T>, retriable: (error: unknown) => boolean, deadlineMs: number, backoff: Backoff, timers: Timers): Promise<T> {
  for (let attempt = 0; ; attempt += 1) {
    try {
      return await call();
    } catch (error) {
      const leftMs = deadlineMs - monotonicMs();
      if (!retriable(error) || timers.closed || leftMs <= 0) throw error;
      await timers.sleep(Math.min(backoffMs(attempt, backoff), leftMs));
    }
  }
}

/** Any thrown value as a DriftwoodError (a bug in a callback stays visible in the message). */
export function asDriftwoodError(error: unknown): DriftwoodError {
  if (error instanceof DriftwoodError) return error;
  return new DriftwoodError('INVALID_REQUEST', error instanceof Error ? error.message : String(error));
}

/**
 * The timers of one client. A closed set runs nothing more: close() cancels every pending
 * timer and ends every sleep at once, so a closing client leaves nothing behind that keeps
 * the process alive.
 */
export class Timers {
  private readonly pending = new Map<NodeJS.Timeout, () => void>();
  private closedValue = false;

  get closed(): boolean {
    return this.closedValue;
  }

  /** Runs `fn` after `ms` unless cancelled or closed first; returns the cancel function. */
  after(ms: number, fn: () => void): () => void {
    if (this.closedValue) return () => undefined;
    const timer = setTimeout(() => {
      this.pending.delete(timer);
      fn();
    }, Math.max(0, ms));
    const cancel = (): void => {
      clearTimeout(timer);
      this.pending.delete(timer);
    };
    this.pending.set(timer, cancel);
    return cancel;
  }

  /** Resolves after `ms`, or at once when the set is closed. */
  sleep(ms: number): Promise<void> {
    if (this.closedValue) return Promise.resolve();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.pending.delete(timer);
        resolve();
      }, Math.max(0, ms));
      this.pending.set(timer, () => {
        clearTimeout(timer);
        this.pending.delete(timer);
        resolve();
      });
    });
  }

  close(): void {
    this.closedValue = true;
    for (const cancel of [...this.pending.values()]) cancel();
    assert.equal(this.pending.size, 0, 'a timer outlived close');
  }
}

/**
 * One timer that calls `wake` at the earliest time asked for: a loop (the producer's sender,
 * the consumer's fetcher) asks for its next deadline after every pass, and a later ask keeps
 * an earlier wake-up still to come.
 */
export class Wakeup {
  private armed: { atMs: number; cancel: () => void } | null = null;

  constructor(private readonly timers: Timers, private readonly wake: () => void) {}

  /** Wakes at `atMs` (monotonic; Infinity: not at all), unless an earlier wake-up is pending. */
  at(atMs: number): void {
    const nowMs = monotonicMs();
    if (this.armed !== null && this.armed.atMs <= atMs && this.armed.atMs > nowMs) return;
    this.armed?.cancel();
    this.armed = null;
    if (atMs === Infinity) return;
    const cancel = this.timers.after(atMs - nowMs, () => {
      this.armed = null;
      this.wake();
    });
    this.armed = { atMs, cancel };
  }
}

/** Milliseconds on a clock that never goes back (deadlines, ages). */
export function monotonicMs(): number {
  return performance.now();
}
