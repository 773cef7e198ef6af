// The real KV: LevelDB (through `level`) in a directory of the broker's data dir.
import assert from 'node:assert/strict';
import { Level } from 'level';
import { levelKV, type KV } from './kv.js';

export async function openLevelKV(dir: string): Promise<KV> {
  assert(dir.length > 0, 'dir must not be empty');
  const db = new Level<string, Uint8Array>(dir, { keyEncoding: 'utf8', valueEncoding: 'view' });
  // Options spelled out: a second process on the same directory must fail, not share it.
  await db.open({ createIfMissing: true, errorIfExists: false, passive: false });
  assert.equal(db.status, 'open');
  return levelKV(db);
}
