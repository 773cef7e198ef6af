// The KV port: where the Raft quorum keeps its hard state, log entries and snapshots
// (DESIGN.md, Raft metadata quorum). The real store is `level` (LevelDB) on disk
// (node-kv.ts); the simulator's is `memory-level` (sim/kv.ts). Both are abstract-level
// databases, so one adapter serves both.
import assert from 'node:assert/strict';
import type { AbstractLevel } from 'abstract-level';

export type KVOp =
  | { type: 'put'; key: string; value: Uint8Array }
  | { type: 'del'; key: string };

export interface KVRange {
  gte?: string;
  lt?: string;
  reverse?: boolean;
  limit?: number;
}

export interface KV {
  get(key: string): Promise<Uint8Array | undefined>;
  /**
   * Applies all ops or none. With `sync: true` the batch is on stable storage when the
   * promise resolves: Raft acknowledges a vote or an append only after that.
   */
  batch(ops: readonly KVOp[], options: { sync: boolean }): Promise<void>;
  /** Entries in key order (or reverse), keys in [gte, lt), at most `limit`. */
  iterate(range: KVRange): AsyncIterable<[string, Uint8Array]>;
  close(): Promise<void>;
}

/** An abstract-level database with utf8 keys and Uint8Array ('view') values. */
export type LevelDatabase = AbstractLevel<string | Buffer | Uint8Array, string, Uint8Array>;

// Encodings spelled out on every call, so a database opened with other defaults still reads
// and writes the same bytes.
const encodings = { keyEncoding: 'utf8', valueEncoding: 'view' } as const;

// `sync` and `fillCache` are classic-level (LevelDB) options; abstract-level's types do not
// list them, and memory-level ignores them.
interface BatchOptions {
  keyEncoding: 'utf8';
  valueEncoding: 'view';
  sync: boolean;
}

interface ReadOptions {
  keyEncoding: 'utf8';
  valueEncoding: 'view';
  fillCache: boolean;
}

interface IteratorOptions extends ReadOptions {
  gte?: string;
  lt?: string;
  reverse: boolean;
  limit: number;
}

export function levelKV(db: LevelDatabase): KV {
  return {
    get: (key) => levelGet(db, key),
    batch: (ops, options) => levelBatch(db, ops, options.sync),
    iterate: (range) => levelIterate(db, range),
    close: () => db.close(),
  };
}

async function levelGet(db: LevelDatabase, key: string): Promise<Uint8Array | undefined> {
  // Point reads of Raft state are one-offs: keep them in the block cache anyway, they are small.
  const options: ReadOptions = { ...encodings, fillCache: true };
  return db.get<string, Uint8Array>(key, options);
}

async function levelBatch(db: LevelDatabase, ops: readonly KVOp[], sync: boolean): Promise<void> {
  if (ops.length === 0) return;
  for (const op of ops) assert(op.key.length > 0, 'empty KV key');
  const options: BatchOptions = { ...encodings, sync };
  await db.batch<string, Uint8Array>(ops.map(toLevelOp), options);
}

function toLevelOp(op: KVOp): { type: 'put'; key: string; value: Uint8Array } | { type: 'del'; key: string } {
  return op.type === 'put' ? { type: 'put', key: op.key, value: op.value } : { type: 'del', key: op.key };
}

async function* levelIterate(db: LevelDatabase, range: KVRange): AsyncGenerator<[string, Uint8Array]> {
  const limit = range.limit ?? -1; // -1 is abstract-level's "no limit"
  assert(Number.isInteger(limit) && limit >= -1, `bad iterate limit: ${limit}`);
  // Scans (log replay, compaction) read each entry once: do not evict the hot point reads.
  const options: IteratorOptions = { ...encodings, fillCache: false, reverse: range.reverse ?? false, limit };
  if (range.gte !== undefined) options.gte = range.gte;
  if (range.lt !== undefined) options.lt = range.lt;
  const iterator = db.iterator<string, Uint8Array>(options);
  try {
    for await (const [key, value] of iterator) yield [key, value];
  } finally {
    await iterator.close();
  }
}
