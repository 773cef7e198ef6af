// A tiny in-memory "Raft log" for controller tests: records become entries, entries apply
// to an image in order, and the same entries can be replayed elsewhere.
import type { Test } from 'tap';
import type { Entry } from '../../raft/index.js';
import { registerBroker, unfenceBroker } from '../../src/controller/commands.js';
import { MetadataImage } from '../../src/controller/image.js';
import { encodeRecords, type MetadataRecord } from '../../src/controller/records.js';
import { isDriftwoodError, type ErrorCode } from '../../storage/errors.js';

export class TestLog {
  readonly entries: Entry[] = [];
  readonly image = new MetadataImage();

  /** Appends the records as one entry and applies it; an empty batch is skipped. */
  commit(records: readonly MetadataRecord[]): Entry | null {
    if (records.length === 0) return null;
    const entry: Entry = { index: this.entries.length + 1, term: 1, type: 'normal', data: encodeRecords(records) };
    this.entries.push(entry);
    this.image.apply(entry);
    return entry;
  }

  /** Registers and unfences brokers with ids `ids`. */
  addBrokers(ids: readonly number[]): void {
    for (const id of ids) {
      const { records, brokerEpoch } = registerBroker({ brokerId: id, address: `b${id}:9092`, incarnationId: `inc-${id}` }, this.image);
      this.commit(records);
      this.commit(unfenceBroker(id, brokerEpoch, this.image));
    }
  }
}

export function replay(entries: readonly Entry[]): MetadataImage {
  const image = new MetadataImage();
  for (const entry of entries) image.apply(entry);
  return image;
}

export const bytesText = (bytes: Uint8Array): string => new TextDecoder().decode(bytes);


/** Asserts that fn throws a DriftwoodError with this code (and a message naming `mentions`). */
export function throwsCode(t: Test, fn: () => unknown, code: ErrorCode, mentions?: string): void {
  try {
    fn();
  } catch (error) {
    t.ok(isDriftwoodError(error), `${code}: a DriftwoodError`);
    if (!isDriftwoodError(error)) return;
    t.equal(error.code, code, `${code}: ${error.message}`);
    if (mentions !== undefined) t.ok(error.message.includes(mentions), `${code} names ${mentions}`);
    return;
  }
  t.fail(`expected ${code}, nothing thrown`);
}
