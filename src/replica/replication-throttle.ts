// The reassignment throttle (Kafka's follower.replication.throttled.rate): a broker copying
// partitions it is being added to fetches them at most this many bytes per second, summed
// over all its fetchers, so a move does not take the disk and network producers need. A token
// bucket with debt: a fetch may bring back more than the tokens left (a batch is never split),
// and the next throttled fetch waits until the debt is paid. Other partitions are not slowed.
import type { Clock } from '../../storage/clock.js';

/** Tokens a throttled fetch may ask for at once: one second of the rate. */
const BURST_SECONDS = 1;

export class ReplicationThrottle {
  private tokens = 0;
  private lastMs: number;
  private lastRate = -1;

  constructor(private readonly clock: Clock, private readonly rateBytesPerSec: () => number) {
    this.lastMs = clock.monotonicMs();
  }

  /** Whether a throttle is set (a rate <= 0 means none). */
  get active(): boolean {
    return this.rateBytesPerSec() > 0;
  }

  /** The bytes a throttled fetch may ask for now, or 0 with how long to wait before asking again. */
  allowance(): { bytes: number; waitMs: number } {
    const rate = this.refill();
    if (rate <= 0) return { bytes: Infinity, waitMs: 0 };
    if (this.tokens > 0) return { bytes: Math.floor(this.tokens), waitMs: 0 };
    return { bytes: 0, waitMs: Math.max(1, Math.ceil(((1 - this.tokens) * 1000) / rate)) };
  }

  /** A throttled fetch brought back `bytes`. */
  spend(bytes: number): void {
    this.refill();
    if (this.rateBytesPerSec() > 0) this.tokens -= bytes;
  }

  private refill(): number {
    const rate = this.rateBytesPerSec();
    const nowMs = this.clock.monotonicMs();
    if (rate !== this.lastRate) {
      // A new rate starts with a full second of tokens; a removed one clears the debt.
      this.tokens = rate > 0 ? rate * BURST_SECONDS : 0;
      this.lastRate = rate;
    } else if (rate > 0) {
      this.tokens = Math.min(rate * BURST_SECONDS, this.tokens + ((nowMs - this.lastMs) * rate) / 1000);
    }
    this.lastMs = nowMs;
    return rate;
  }
}
