// A fast, non-cryptographic 64-bit hash (FNV-1a on two 32-bit lanes) for the simulator's
// checkers and trace: it runs on every applied entry and every traced event, where a SHA
// costs more than the event itself. Collisions would only blur a checker, never fake one.

const PRIME = 0x01000193;

export class Fnv64 {
  private high = 0x811c9dc5;
  private low = 0x050c5d1f;

  update(data: string | Uint8Array): this {
    if (typeof data === 'string') {
      for (let i = 0; i < data.length; i += 1) this.byte(data.charCodeAt(i) & 0xff, data.charCodeAt(i) >>> 8);
    } else {
      for (let i = 0; i < data.length; i += 1) this.byte(data[i] ?? 0, 0);
    }
    return this;
  }

  private byte(value: number, extra: number): void {
    this.low = Math.imul(this.low ^ value, PRIME) >>> 0;
    this.high = Math.imul(this.high ^ (value ^ extra ^ (this.low >>> 24)), PRIME) >>> 0;
  }

  hex(): string {
    return this.high.toString(16).padStart(8, '0') + this.low.toString(16).padStart(8, '0');
  }
}

export function hash64(...parts: Array<string | Uint8Array>): string {
  const hash = new Fnv64();
  for (const part of parts) hash.update(part);
  return hash.hex();
}
