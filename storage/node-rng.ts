// The real Rng: the operating system's randomness.
import { randomInt } from 'node:crypto';
import type { Rng } from './rng.js';

export const nodeRng: Rng = {
  int: (maxExclusive) => randomInt(maxExclusive),
  float: () => randomInt(2 ** 48) / 2 ** 48,
};
