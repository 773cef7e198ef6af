// The simulator's network: messages between node ids, delivered through the scheduler after
// a random delay (so they reorder), sometimes dropped or duplicated, and never across a cut
// link. Cuts are one-way (from -> to), so symmetric partitions, one-way partitions, bridges
// and isolations are all sets of cut links.
import assert from 'node:assert/strict';
import type { Rng } from '../storage/rng.js';
import type { Scheduler } from './scheduler.js';

export interface LinkFaults {
  delayMsMin: number;
  delayMsMax: number;
  lossProbability: number;
  duplicateProbability: number;
}

export const calmLinks: LinkFaults = { delayMsMin: 1, delayMsMax: 5, lossProbability: 0, duplicateProbability: 0 };

export interface Addressed {
  readonly from: number;
  readonly to: number;
}

export interface NetworkStats {
  sent: number;
  delivered: number;
  dropped: number;
  duplicated: number;
}

export class SimNetwork<M extends Addressed> {
  private readonly receivers = new Map<number, (message: M) => void>();
  private readonly cut = new Set<string>();
  readonly stats: NetworkStats = { sent: 0, delivered: 0, dropped: 0, duplicated: 0 };
  faults: LinkFaults;

  constructor(private readonly scheduler: Scheduler, private readonly rng: Rng, faults: LinkFaults = calmLinks, private readonly copy: (message: M) => M = (m) => m) {
    this.faults = faults;
  }

  /** A node is up and takes messages; detach() when it crashes (its in-flight mail is lost). */
  attach(id: number, receive: (message: M) => void): void {
    this.receivers.set(id, receive);
  }

  detach(id: number): void {
    this.receivers.delete(id);
  }

  send(messages: readonly M[]): void {
    for (const message of messages) {
      this.stats.sent += 1;
      if (this.isCut(message.from, message.to) || this.rng.float() < this.faults.lossProbability) {
        this.stats.dropped += 1;
        continue;
      }
      this.deliverLater(message);
      if (this.rng.float() < this.faults.duplicateProbability) {
        this.stats.duplicated += 1;
        this.deliverLater(message);
      }
    }
  }

  private deliverLater(message: M): void {
    const { delayMsMin, delayMsMax } = this.faults;
    const delayMs = delayMsMin + this.rng.float() * (delayMsMax - delayMsMin);
    const copy = this.copy(message);
    this.scheduler.after(delayMs, 'deliver', () => {
      // A link cut while the message was on the wire loses it, as a real partition would.
      const receive = this.receivers.get(copy.to);
      if (receive === undefined || this.isCut(copy.from, copy.to)) {
        this.stats.dropped += 1;
        return;
      }
      this.stats.delivered += 1;
      receive(copy);
    });
  }

  isCut(from: number, to: number): boolean {
    return this.cut.has(`${from}>${to}`);
  }

  /** Messages from `from` to `to` are lost; the other direction still works. */
  cutOneWay(from: number, to: number): void {
    assert.notEqual(from, to);
    this.cut.add(`${from}>${to}`);
  }

  /** Splits the nodes into groups that cannot reach each other. */
  partition(groups: readonly (readonly number[])[]): void {
    for (const group of groups) {
      for (const other of groups) {
        if (other === group) continue;
        for (const a of group) for (const b of other) this.cutOneWay(a, b);
      }
    }
  }

  /** Cuts `id` off from everyone in `others`, both ways. */
  isolate(id: number, others: readonly number[]): void {
    this.partition([[id], others.filter((other) => other !== id)]);
  }

  heal(): void {
    this.cut.clear();
  }

  get cutLinks(): number {
    return this.cut.size;
  }
}
