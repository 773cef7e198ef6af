// The simulator's Rng: sfc32 (Chris Doty-Humphrey's small fast chaotic generator) seeded
// through splitmix32. It is small, fast, passes PractRand at the sizes a run draws, and above
// all deterministic: one seed gives one sequence on every machine, so a failing run replays.
import assert from 'node:assert/strict';
import type { Rng } from '../storage/rng.js';

const uint32Count = 0x1_0000_0000;
// sfc32's authors discard the first outputs so that similar seeds diverge before use.
const warmupRounds = 12;

export class SeededRng implements Rng {
  private a: number;
  private b: number;
  private c: number;
  private counter: number;

  constructor(seed: number) {
    assert(Number.isSafeInteger(seed), `seed must be a safe integer, got ${seed}`);
    // Each half of a 53-bit seed fills its own words of the state, so distinct seeds give
    // distinct states (seeds 1 and 2^32 + 1 do not collide).
    const mixLow = splitmix32(seed >>> 0);
    const mixHigh = splitmix32((Math.floor(seed / uint32Count) >>> 0) ^ 0x6a09e667);
    this.a = mixLow();
    this.b = mixHigh();
    this.c = mixLow();
    this.counter = mixHigh();
    for (let round = 0; round < warmupRounds; round++) this.nextUint32();
  }

  /** A uniformly random integer in [0, 2^32). */
  nextUint32(): number {
    // sfc32, with >>> 0 and | 0 keeping every intermediate a 32-bit integer.
    const t = (((this.a + this.b) | 0) + this.counter) | 0;
    this.counter = (this.counter + 1) | 0;
    this.a = this.b ^ (this.b >>> 9);
    this.b = (this.c + (this.c << 3)) | 0;
    this.c = (this.c << 21) | (this.c >>> 11);
    this.c = (this.c + t) | 0;
    return t >>> 0;
  }

  int(maxExclusive: number): number {
    assert(Number.isInteger(maxExclusive), `maxExclusive must be an integer, got ${maxExclusive}`);
    assert(maxExclusive >= 1 && maxExclusive <= uint32Count, `maxExclusive out of range: ${maxExclusive}`);
    // Rejection sampling removes the modulo bias: draws at or above `limit` would favour the
    // small results. Fewer than half of the draws are rejected, so the loop ends quickly.
    const limit = uint32Count - (uint32Count % maxExclusive);
    for (;;) {
      const draw = this.nextUint32();
      if (draw < limit) return draw % maxExclusive;
    }
  }

  float(): number {
    // 53 random bits: every double in [0, 1) with spacing 2^-53 is equally likely.
    const high = this.nextUint32() >>> 5;
    const low = this.nextUint32() >>> 6;
    const result = (high * 0x400_0000 + low) / 0x20_0000_0000_0000;
    assert(result >= 0 && result < 1);
    return result;
  }

  /** True with probability `probability`. */
  chance(probability: number): boolean {
    assert(probability >= 0 && probability <= 1, `probability out of range: ${probability}`);
    return this.float() < probability;
  }

  /**
   * An independent stream derived from this one: each simulated component gets its own fork,
   * so adding draws in one component does not shift the randomness of the others.
   */
  fork(): SeededRng {
    const high = this.nextUint32() & 0x1f_ffff;
    const low = this.nextUint32();
    return new SeededRng(high * uint32Count + low);
  }
}

function splitmix32(seed: number): () => number {
  let state = seed | 0;
  return () => {
    state = (state + 0x9e3779b9) | 0;
    let z = state;
    z = Math.imul(z ^ (z >>> 16), 0x85ebca6b);
    z = Math.imul(z ^ (z >>> 13), 0xc2b2ae35);
    return (z ^ (z >>> 16)) >>> 0;
  };
}
