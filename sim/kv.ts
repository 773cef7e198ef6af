// The simulator's KV: memory-level behind the same adapter as the real LevelDB.
//
// memory-level hands out and keeps the caller's own Uint8Arrays, where LevelDB copies at both
// ends; this wrapper copies too, so a test or a simulated node that reuses a buffer behaves
// as it would on the real store. Pass the same MemoryLevel again after a simulated restart to
// keep the data: closing the KV closes the database, and opening reopens it with its contents.
// Every batch is durable here, synced or not: the simulated crash does not reach the KV yet.
import assert from 'node:assert/strict';
import { MemoryLevel } from 'memory-level';
import { levelKV, type KV, type KVOp, type KVRange } from '../storage/kv.js';

export function createMemoryLevel(): MemoryLevel<string, Uint8Array> {
  return new MemoryLevel<string, Uint8Array>({ keyEncoding: 'utf8', valueEncoding: 'view', storeEncoding: 'buffer' });
}

/**
 * `copy: false` skips the copies for a caller that never reuses a buffer it put and never
 * changes one it got (the Raft storage: it encodes into fresh buffers and decodes into new
 * objects), which the simulator's speed needs.
 */
export async function openMemoryKV(db: MemoryLevel<string, Uint8Array> = createMemoryLevel(), options: { copy: boolean } = { copy: true }): Promise<KV> {
  if (db.status !== 'open') await db.open({ createIfMissing: true, errorIfExists: false, passive: false });
  assert.equal(db.status, 'open');
  const kv = levelKV(db);
  return options.copy ? copyingKV(kv) : kv;
}

function copyingKV(inner: KV): KV {
  return {
    get: async (key) => copy(await inner.get(key)),
    // async, so that a bad op rejects like the real store rather than throwing in the caller.
    batch: async (ops, options) => {
      await inner.batch(ops.map(copyOp), options);
    },
    iterate: (range) => copyEntries(inner, range),
    close: () => inner.close(),
  };
}

function copyOp(op: KVOp): KVOp {
  return op.type === 'put' ? { type: 'put', key: op.key, value: Uint8Array.from(op.value) } : op;
}

function copy(value: Uint8Array | undefined): Uint8Array | undefined {
  return value === undefined ? undefined : Uint8Array.from(value);
}

async function* copyEntries(inner: KV, range: KVRange): AsyncGenerator<[string, Uint8Array]> {
  for await (const [key, value] of inner.iterate(range)) yield [key, Uint8Array.from(value)];
}

/**
 * A KV whose synced writes take virtual time, like an fsync: a batch reaches the store only
 * when its latency has passed and the process that wrote it is still alive. A crash in
 * between loses it, so an acknowledgement sent before the write completed can outlive the
 * state it promised (what `raft-ack-before-persist` does and the checkers must catch).
 */
export function slowKV(inner: KV, options: { delayMs: () => number; after: (delayMs: number, run: () => void) => void; alive: () => boolean; onWriteStart?: (delayMs: number) => void }): KV {
  return {
    get: (key) => inner.get(key),
    iterate: (range) => inner.iterate(range),
    close: () => inner.close(),
    batch: (ops, batchOptions) => new Promise<void>((resolve, reject) => {
      const delayMs = options.delayMs();
      options.onWriteStart?.(delayMs);
      options.after(delayMs, () => {
        // A dead process's write never completes; its caller is gone too.
        if (!options.alive()) return;
        inner.batch(ops, batchOptions).then(resolve, reject);
      });
    }),
  };
}
