// The Disk port: every byte the partition log keeps goes through this interface, so the same
// log code runs on real files (node-disk.ts) and on the simulator's disk, which can lose
// unsynced bytes or tear the last write at a crash (sim/disk.ts).
//
// Paths are '/'-separated and relative to the disk's root. The semantics follow POSIX:
// - write() puts bytes in the file at a position; they are visible to read() at once but
//   durable only after sync() of that file.
// - A file's existence and its name (create, rename, remove) are durable only after
//   syncDir() of its parent directory.

export interface DiskFile {
  /** Current size in bytes, including unsynced writes. */
  readonly sizeBytes: number;
  /** Writes the chunks back to back starting at `position` (one writev where possible). */
  write(position: number, chunks: readonly Uint8Array[]): Promise<void>;
  /** Reads up to `length` bytes at `position`; fewer at the end of the file. */
  read(position: number, length: number): Promise<Buffer>;
  /** Makes the file's data durable (fdatasync). */
  sync(): Promise<void>;
  /** Cuts the file to `sizeBytes`; not durable until sync(). */
  truncate(sizeBytes: number): Promise<void>;
  close(): Promise<void>;
}

export interface Disk {
  /** Opens a file for reading and writing; `create` makes it if missing (else NOT_FOUND). */
  open(path: string, options: { create: boolean }): Promise<DiskFile>;
  /** Names of the entries in a directory (not paths), in no particular order. */
  list(dir: string): Promise<string[]>;
  /** Creates the directory and its parents; no error if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Atomically replaces `to` with `from`. Durable after syncDir of the parent. */
  rename(from: string, to: string): Promise<void>;
  /** Removes a file; no error if it is missing. */
  remove(path: string): Promise<void>;
  /** Removes a directory and everything under it; no error if it is missing. */
  removeDir(dir: string): Promise<void>;
  /** Makes the directory's entries (creations, renames, removals) durable. */
  syncDir(dir: string): Promise<void>;
  exists(path: string): Promise<boolean>;
}

export function parentDir(path: string): string {
  const slash = path.lastIndexOf('/');
  return slash < 0 ? '.' : path.slice(0, slash);
}

export function joinPath(dir: string, name: string): string {
  return dir === '.' || dir === '' ? name : `${dir}/${name}`;
}
