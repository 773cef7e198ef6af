// The Rng port: core code draws randomness only through it, so a simulator seed replays
// exactly (DESIGN.md, Ports). The simulator's is a seeded PRNG; the real one is crypto-seeded.

export interface Rng {
  /** A uniformly random integer in [0, maxExclusive). */
  int(maxExclusive: number): number;
  /** A uniformly random float in [0, 1). */
  float(): number;
}
