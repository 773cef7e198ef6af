// The chaos run's workload through the client library: idempotent acks=all producers sending
// keyed records whose value names the producer and its own sequence number, and a consumer
// group whose members commit by hand and then read the committed offsets back. Everything
// acknowledged, consumed and observed is recorded for the checks at the end.
import assert from 'node:assert/strict';
import { performance } from 'node:perf_hooks';
import { Consumer } from '../client/consumer.js';
import { Producer } from '../client/producer.js';
import { isDriftwoodError } from '../../storage/errors.js';

export interface AckedRecord {
  readonly producer: number;
  readonly sequence: number;
  readonly partition: number;
  readonly offset: number;
}

export interface ConsumedRecord {
  readonly member: number;
  readonly partition: number;
  readonly offset: number;
  readonly value: string;
}

/** One committed() answer for one partition, with when it was asked and answered. */
export interface CommitObservation {
  readonly member: number;
  readonly partition: number;
  readonly offset: number;
  readonly startMs: number;
  readonly endMs: number;
}

/** A record's value: "<producer>:<sequence>". */
export function recordValue(producer: number, sequence: number): string {
  return `${producer}:${sequence}`;
}

export function parseRecordValue(value: string): { producer: number; sequence: number } | null {
  const match = /^(\d+):(\d+)$/.exec(value);
  if (match === null) return null;
  return { producer: Number(match[1]), sequence: Number(match[2]) };
}

const TICK_MS = 20;
/** Sends of one producer not yet answered at most: a paused leader must not grow memory without end. */
const IN_FLIGHT_MAX = 2000;
/** Records one run records at most, per producer and per consumer (a bound on memory). */
const RECORDS_MAX = 5_000_000;
const KEYS_PER_PRODUCER = 16;
/** How often a member commits its positions and reads the committed offsets back. */
const COMMIT_INTERVAL_MS = 500;

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

/** Short client timeouts: a node that is paused or cut must cost seconds, not the defaults' minutes. */
const CLIENT_TIMEOUTS = { requestTimeoutMs: 5000, retryBackoffMs: 50, retryBackoffMsMax: 500, metadataMaxAgeMs: 5000 } as const;

export class ProducerLoad {
  readonly acked: AckedRecord[] = [];
  readonly errorCodes = new Map<string, number>();
  sent = 0;
  private inFlight = 0;
  private stopped = false;
  private readonly producer: Producer;
  private readonly running: Promise<void>;

  constructor(readonly index: number, bootstrap: readonly string[], private readonly topic: string, private readonly recordsPerSec: number) {
    assert.ok(recordsPerSec > 0, 'a producer sends something');
    this.producer = new Producer({ bootstrap, clientId: `chaos-producer-${index}`, acks: 'all', idempotent: true, lingerMs: 5, deliveryTimeoutMs: 30_000, ...CLIENT_TIMEOUTS });
    this.running = this.loop();
  }

  get failed(): number {
    return [...this.errorCodes.values()].reduce((a, b) => a + b, 0);
  }

  /** Stops sending and waits (up to drainMs) for every send to be answered. */
  async stop(drainMs: number): Promise<void> {
    this.stopped = true;
    await this.running;
    await this.producer.close(drainMs);
  }

  private async loop(): Promise<void> {
    const startMs = performance.now();
    while (!this.stopped && this.sent < RECORDS_MAX) {
      const due = Math.floor(((performance.now() - startMs) / 1000) * this.recordsPerSec);
      while (this.sent < due && this.inFlight < IN_FLIGHT_MAX && this.sent < RECORDS_MAX) this.send(this.sent);
      await sleep(TICK_MS);
    }
  }

  private send(sequence: number): void {
    this.sent += 1;
    this.inFlight += 1;
    const key = `p${this.index}-k${sequence % KEYS_PER_PRODUCER}`;
    this.producer.send({ topic: this.topic, key, value: recordValue(this.index, sequence) }).then(
      (metadata) => { this.acked.push({ producer: this.index, sequence, partition: metadata.partition, offset: metadata.offset }); },
      (error: unknown) => {
        const code = isDriftwoodError(error) ? error.code : 'UNKNOWN';
        this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
      },
    ).finally(() => { this.inFlight -= 1; });
  }
}

export class GroupMemberLoad {
  readonly consumed: ConsumedRecord[] = [];
  readonly observations: CommitObservation[] = [];
  commits = 0;
  commitFailures = 0;
  readonly errorCodes = new Map<string, number>();
  private stopped = false;
  private readonly consumer: Consumer;
  private readonly running: Promise<void>;

  constructor(readonly index: number, bootstrap: readonly string[], topic: string, groupId: string) {
    this.consumer = new Consumer({
      bootstrap,
      clientId: `chaos-consumer-${index}`,
      groupId,
      autoCommit: false,
      autoOffsetReset: 'earliest',
      fetchMaxWaitMs: 200,
      sessionTimeoutMs: 6000,
      apiTimeoutMs: 10_000,
      ...CLIENT_TIMEOUTS,
      onError: (error) => { this.count(error); },
    });
    this.consumer.subscribe([topic]);
    this.running = this.loop();
  }

  /** Stops polling, commits once more and leaves the group. */
  async stop(): Promise<void> {
    this.stopped = true;
    await this.running;
    await this.commitAndObserve();
    await this.consumer.close().catch((error: unknown) => { this.count(error); });
  }

  private count(error: unknown): void {
    const code = isDriftwoodError(error) ? error.code : 'UNKNOWN';
    this.errorCodes.set(code, (this.errorCodes.get(code) ?? 0) + 1);
  }

  private async loop(): Promise<void> {
    let lastCommitMs = performance.now();
    while (!this.stopped) {
      const records = await this.consumer.poll(200).catch((error: unknown) => { this.count(error); return []; });
      for (const record of records) {
        if (this.consumed.length >= RECORDS_MAX) break;
        this.consumed.push({ member: this.index, partition: record.partition, offset: record.offset, value: record.value?.toString('utf8') ?? '' });
      }
      if (performance.now() - lastCommitMs >= COMMIT_INTERVAL_MS) {
        lastCommitMs = performance.now();
        await this.commitAndObserve();
      }
      // A poll that failed at once must not spin.
      if (records.length === 0) await sleep(10);
    }
  }

  /** Commits the positions, then reads the group's committed offsets of the assigned partitions back. */
  private async commitAndObserve(): Promise<void> {
    try {
      await this.consumer.commit();
      this.commits += 1;
    } catch (error) {
      this.commitFailures += 1;
      this.count(error);
    }
    const startMs = performance.now();
    try {
      const committed = await this.consumer.committed();
      const endMs = performance.now();
      for (const entry of committed) {
        if (entry.offset !== null) this.observations.push({ member: this.index, partition: entry.partition, offset: entry.offset, startMs, endMs });
      }
    } catch (error) {
      this.count(error);
    }
  }
}
