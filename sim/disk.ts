// The simulator's Disk: files in memory with the crash semantics of a POSIX file system, so
// the partition log and its recovery run against the failures a real power loss causes.
//
// The model. Each file (inode) holds what reads see (`data`), what survives a crash
// (`durable`, its contents at the last sync) and the write/truncate operations made since
// then, in order. A crash keeps a random prefix of those operations, and the first operation
// it drops, if a write, may be torn: part of its bytes reached the platter, followed perhaps by
// garbage where the disk was mid-sector. Names follow the same rule one level up: each
// directory has live entries and the entries as of its last syncDir; a crash reverts to the
// latter, so a file created or renamed without syncDir of its parent is gone or back under
// its old name, whatever its data. Everything is deterministic: randomness comes only from
// the Rng handed to crash(), and no operation looks at time.
import assert from 'node:assert/strict';
import type { Disk, DiskFile } from '../storage/disk.js';
import { DriftwoodError } from '../storage/errors.js';
import type { Rng } from '../storage/rng.js';

/** A change to a file since its last sync, replayed onto `durable` by sync() or a crash. */
export type UnsyncedOp =
  | { readonly kind: 'write'; readonly position: number; readonly bytes: Uint8Array }
  | { readonly kind: 'truncate'; readonly sizeBytes: number };

export interface CrashOptions {
  /** Probability that the first dropped operation, if a write, lands partly. Default 0.5. */
  tornWriteProbability?: number;
}

// Limits: a simulated file larger than this is a bug in the test or the log's roll policy.
const fileSizeBytesMax = 1 << 30;
const capacityBytesMin = 64;
const tornWriteProbabilityDefault = 0.5;

/** A growable byte array. Bytes past `size` are always zero, so growing shows zeros (holes). */
class Bytes {
  private buffer: Uint8Array;
  private size: number;

  constructor(buffer: Uint8Array = new Uint8Array(0), size = 0) {
    assert(size <= buffer.byteLength);
    this.buffer = buffer;
    this.size = size;
  }

  get sizeBytes(): number {
    return this.size;
  }

  write(position: number, bytes: Uint8Array): void {
    if (bytes.byteLength === 0) return; // pwrite of nothing changes nothing, not even the size
    const end = position + bytes.byteLength;
    this.reserve(end);
    this.buffer.set(bytes, position);
    this.size = Math.max(this.size, end);
  }

  truncate(sizeBytes: number): void {
    this.reserve(sizeBytes);
    // Zero the cut tail now, to keep the invariant that lets a later growth show zeros.
    if (sizeBytes < this.size) this.buffer.fill(0, sizeBytes, this.size);
    this.size = sizeBytes;
  }

  apply(op: UnsyncedOp): void {
    if (op.kind === 'write') this.write(op.position, op.bytes);
    else this.truncate(op.sizeBytes);
  }

  /** A copy of up to `length` bytes at `position` that the caller may keep. */
  read(position: number, length: number): Buffer {
    const end = Math.min(this.size, position + length);
    if (end <= position) return Buffer.alloc(0);
    return Buffer.from(this.buffer.subarray(position, end));
  }

  clone(): Bytes {
    return new Bytes(this.buffer.slice(0, this.size), this.size);
  }

  private reserve(sizeBytes: number): void {
    assert(sizeBytes <= fileSizeBytesMax, `simulated file larger than ${fileSizeBytesMax} bytes`);
    if (sizeBytes <= this.buffer.byteLength) return;
    const capacity = Math.max(sizeBytes, this.buffer.byteLength * 2, capacityBytesMin);
    const grown = new Uint8Array(Math.min(capacity, fileSizeBytesMax));
    grown.set(this.buffer.subarray(0, this.size));
    this.buffer = grown;
  }
}

class Inode {
  data = new Bytes();
  durable = new Bytes();
  unsynced: UnsyncedOp[] = [];

  record(op: UnsyncedOp): void {
    this.data.apply(op);
    this.unsynced.push(op);
  }

  /** fdatasync: the durable copy catches up by replaying what changed, not by copying all. */
  sync(): void {
    for (const op of this.unsynced) this.durable.apply(op);
    this.unsynced = [];
    assert.equal(this.durable.sizeBytes, this.data.sizeBytes);
  }

  /** Power loss: keeps durable + a random prefix of the unsynced ops, the next maybe torn. */
  recover(rng: Rng, tornWriteProbability: number): void {
    if (this.unsynced.length === 0) return;
    const kept = rng.int(this.unsynced.length + 1);
    const recovered = this.durable.clone();
    for (const op of this.unsynced.slice(0, kept)) recovered.apply(op);
    const dropped = this.unsynced[kept];
    if (dropped?.kind === 'write' && rng.float() < tornWriteProbability) tearWrite(recovered, dropped, rng);
    // What the disk holds after the reboot is all there is: it is durable from now on.
    this.data = recovered;
    this.durable = recovered.clone();
    this.unsynced = [];
  }
}

/** Applies a prefix of a write's bytes, then maybe garbage (random or zero) after it. */
function tearWrite(target: Bytes, op: UnsyncedOp & { kind: 'write' }, rng: Rng): void {
  const length = op.bytes.byteLength;
  if (length === 0) return;
  const appliedBytes = rng.int(length);
  target.write(op.position, op.bytes.subarray(0, appliedBytes));
  if (rng.int(2) === 0) return;
  const garbage = new Uint8Array(1 + rng.int(length - appliedBytes));
  if (rng.int(2) === 0) {
    for (let index = 0; index < garbage.length; index++) garbage[index] = rng.int(256);
  }
  target.write(op.position + appliedBytes, garbage);
}

class Directory {
  entries = new Map<string, Node>();
  /** The entries as of the last syncDir: what a crash reverts to. */
  durableEntries = new Map<string, Node>();
}

type Node = Inode | Directory;

export class SimDisk implements Disk {
  private readonly root = new Directory();
  /** Bumped by every crash; handles opened in an older generation are dead. */
  private generation = 0;
  private armed: { opsLeft: number; rng: Rng; options: CrashOptions } | undefined;
  private armedCrashFired = false;
  private failNextCode: string | undefined;

  /** Whether an armed crash has fired since the last reboot(); the disk refuses all ops. */
  get crashed(): boolean {
    return this.armedCrashFired;
  }

  /** The machine comes back after an armed crash: new opens see the recovered state. */
  reboot(): void {
    this.armedCrashFired = false;
  }

  /**
   * Power loss now: directories revert to their synced entries, files to durable + a random
   * prefix of their unsynced ops, and every open handle dies. New opens work at once.
   */
  crash(rng: Rng, options: CrashOptions = {}): void {
    const tornWriteProbability = options.tornWriteProbability ?? tornWriteProbabilityDefault;
    assert(tornWriteProbability >= 0 && tornWriteProbability <= 1, 'tornWriteProbability out of [0, 1]');
    this.generation += 1;
    const inodes = new Set<Inode>();
    revertDirectory(this.root, new Set(), inodes);
    for (const inode of inodes) inode.recover(rng, tornWriteProbability);
  }

  /**
   * Crashes instead of performing the mutating operation after the next `afterOps` ones, so
   * a test can cut a multi-step operation (append, roll, rename) at any point.
   */
  armCrash(afterOps: number, rng: Rng, options: CrashOptions = {}): void {
    assert(Number.isSafeInteger(afterOps) && afterOps >= 0, `afterOps must be >= 0, got ${afterOps}`);
    assert(!this.armedCrashFired, 'armCrash before reboot() of the last crash');
    this.armed = { opsLeft: afterOps, rng, options };
  }

  /** Cancels an armed crash that has not fired. */
  disarm(): void {
    this.armed = undefined;
  }

  /** The next mutating operation fails with KAFKA_STORAGE_ERROR and changes nothing. */
  failNextOp(code = 'EIO'): void {
    assert(code.length > 0);
    this.failNextCode = code;
  }

  /** Sum of the sizes of the files reachable by their live names (each inode once). */
  totalBytes(): number {
    let total = 0;
    const inodes = new Set<Inode>();
    collectFiles(this.root, '', new Set(), (_path, inode) => inodes.add(inode));
    for (const inode of inodes) total += inode.data.sizeBytes;
    return total;
  }

  /** Paths of all files reachable by their live names, sorted. */
  fileNames(): string[] {
    const names: string[] = [];
    collectFiles(this.root, '', new Set(), (path) => names.push(path));
    return names.sort();
  }

  async open(path: string, options: { create: boolean }): Promise<DiskFile> {
    await this.enter();
    const { parent, name } = this.lookupParent(path);
    const node = parent.entries.get(name);
    if (node instanceof Directory) throw storageError('open', path, 'EISDIR');
    if (node !== undefined) return new SimDiskFile(this, node, path, this.generation);
    if (!options.create) throw new DriftwoodError('NOT_FOUND', path);
    this.beforeMutation('open', path);
    const inode = new Inode();
    parent.entries.set(name, inode);
    return new SimDiskFile(this, inode, path, this.generation);
  }

  async list(dir: string): Promise<string[]> {
    await this.enter();
    return [...this.lookupDir(dir).entries.keys()];
  }

  async mkdir(dir: string): Promise<void> {
    await this.enter();
    this.beforeMutation('mkdir', dir);
    const names = segments(dir);
    let current = this.root;
    for (const [index, name] of names.entries()) current = mkdirEntry(current, name, dir, index === names.length - 1);
  }

  async rename(from: string, to: string): Promise<void> {
    await this.enter();
    const source = this.lookupParent(from);
    const target = this.lookupParent(to);
    const node = source.parent.entries.get(source.name);
    if (node === undefined) throw new DriftwoodError('NOT_FOUND', from);
    const intoItself = segments(to).join('/').startsWith(`${segments(from).join('/')}/`);
    assert(!(node instanceof Directory && intoItself), `rename of a directory into itself: ${from} -> ${to}`);
    checkReplaceable(node, target.parent.entries.get(target.name), `${from} -> ${to}`);
    this.beforeMutation('rename', `${from} -> ${to}`);
    source.parent.entries.delete(source.name);
    target.parent.entries.set(target.name, node);
  }

  async remove(path: string): Promise<void> {
    await this.enter();
    const found = this.findParent(path);
    const node = found?.parent.entries.get(found.name);
    if (node instanceof Directory) throw storageError('unlink', path, 'EISDIR');
    this.beforeMutation('unlink', path);
    if (found !== undefined && node !== undefined) found.parent.entries.delete(found.name);
  }

  async removeDir(dir: string): Promise<void> {
    await this.enter();
    assert(segments(dir).length > 0, 'removeDir of the root directory');
    this.beforeMutation('rm', dir);
    // Like fs.rm({ recursive, force }): a missing entry is fine, and a file is removed too.
    const found = this.findParent(dir);
    if (found !== undefined) found.parent.entries.delete(found.name);
  }

  async syncDir(dir: string): Promise<void> {
    await this.enter();
    const directory = this.lookupDir(dir);
    this.beforeMutation('fsync', dir);
    directory.durableEntries = new Map(directory.entries);
  }

  async exists(path: string): Promise<boolean> {
    await this.enter();
    const found = this.findParent(path);
    if (found === undefined) return segments(path).length === 0;
    return found.parent.entries.has(found.name);
  }

  /** For SimDiskFile only: throws if the handle belongs to a disk state before a crash. */
  checkGeneration(generation: number): void {
    if (generation !== this.generation) throw new Error('disk crashed');
  }

  /**
   * For this file's classes only. Every mutating operation passes here after its checks and
   * before its effect:
   * an armed crash fires instead of the operation, an injected fault fails it.
   */
  beforeMutation(op: string, path: string): void {
    if (this.armed !== undefined) {
      if (this.armed.opsLeft === 0) this.fireArmedCrash();
      this.armed.opsLeft -= 1;
    }
    if (this.failNextCode !== undefined) {
      const code = this.failNextCode;
      this.failNextCode = undefined;
      throw storageError(op, path, code);
    }
  }

  private fireArmedCrash(): never {
    assert(this.armed !== undefined);
    const { rng, options } = this.armed;
    this.armed = undefined;
    this.crash(rng, options);
    this.armedCrashFired = true;
    throw new Error('disk crashed');
  }

  /**
   * The start of every operation. The await keeps the ordering of a real disk, where no
   * operation completes within the caller's synchronous turn; after an armed crash the old
   * process is dead and nothing it asks for happens until reboot().
   */
  private async enter(): Promise<void> {
    await Promise.resolve();
    if (this.armedCrashFired) throw new Error('disk crashed');
  }

  private lookupDir(dir: string): Directory {
    let current = this.root;
    for (const name of segments(dir)) {
      const node = current.entries.get(name);
      if (node === undefined) throw new DriftwoodError('NOT_FOUND', dir);
      if (!(node instanceof Directory)) throw storageError('opendir', dir, 'ENOTDIR');
      current = node;
    }
    return current;
  }

  /** The directory that holds `path` and its last name; NOT_FOUND if the directory is missing. */
  private lookupParent(path: string): { parent: Directory; name: string } {
    const names = segments(path);
    const name = names.pop();
    assert(name !== undefined, `path names the root directory: '${path}'`);
    return { parent: this.lookupDir(names.join('/')), name };
  }

  /** As lookupParent, but undefined when the directory is missing (remove, exists). */
  private findParent(path: string): { parent: Directory; name: string } | undefined {
    if (segments(path).length === 0) return undefined;
    try {
      return this.lookupParent(path);
    } catch (error) {
      // Only a missing directory means "no such entry"; a file in the way is ENOTDIR, as on disk.
      if (error instanceof DriftwoodError && error.code === 'NOT_FOUND') return undefined;
      throw error;
    }
  }
}

class SimDiskFile implements DiskFile {
  private closed = false;

  constructor(
    private readonly disk: SimDisk,
    private readonly inode: Inode,
    private readonly path: string,
    private readonly generation: number,
  ) {}

  get sizeBytes(): number {
    this.disk.checkGeneration(this.generation);
    return this.inode.data.sizeBytes;
  }

  async write(position: number, chunks: readonly Uint8Array[]): Promise<void> {
    await this.enter();
    assertPosition(position);
    this.disk.beforeMutation('write', this.path);
    // One copy of all chunks: the caller may reuse its buffers once the write resolves.
    const bytes = Buffer.concat(chunks);
    if (bytes.byteLength > 0) this.inode.record({ kind: 'write', position, bytes });
  }

  async read(position: number, length: number): Promise<Buffer> {
    await this.enter();
    assertPosition(position);
    assert(Number.isSafeInteger(length) && length >= 0, `bad read length: ${length}`);
    return this.inode.data.read(position, length);
  }

  async sync(): Promise<void> {
    await this.enter();
    this.disk.beforeMutation('fdatasync', this.path);
    this.inode.sync();
  }

  async truncate(sizeBytes: number): Promise<void> {
    await this.enter();
    assertPosition(sizeBytes);
    this.disk.beforeMutation('ftruncate', this.path);
    this.inode.record({ kind: 'truncate', sizeBytes });
  }

  async close(): Promise<void> {
    await this.enter();
    this.closed = true;
  }

  private async enter(): Promise<void> {
    await Promise.resolve();
    this.disk.checkGeneration(this.generation);
    assert(!this.closed, `file is closed: ${this.path}`);
  }
}

/** Reverts a directory tree to its synced entries and collects the inodes that survive. */
function revertDirectory(dir: Directory, visited: Set<Directory>, inodes: Set<Inode>): void {
  if (visited.has(dir)) return; // a directory renamed without syncing both parents shows up twice
  visited.add(dir);
  // Sorted names keep the order of rng draws independent of the order entries were made.
  const names = [...dir.durableEntries.keys()].sort();
  dir.entries = new Map(dir.durableEntries);
  for (const name of names) {
    const node = dir.durableEntries.get(name);
    assert(node !== undefined);
    if (node instanceof Directory) revertDirectory(node, visited, inodes);
    else inodes.add(node);
  }
}

function collectFiles(dir: Directory, prefix: string, visited: Set<Directory>, visit: (path: string, inode: Inode) => void): void {
  if (visited.has(dir)) return;
  visited.add(dir);
  for (const [name, node] of dir.entries) {
    const path = prefix === '' ? name : `${prefix}/${name}`;
    if (node instanceof Directory) collectFiles(node, path, visited, visit);
    else visit(path, node);
  }
}

/** mkdir is durable at once (the entry goes into the synced entries too): simpler, and the
 *  log creates directories rarely and syncs their parent anyway. */
function mkdirEntry(parent: Directory, name: string, dir: string, last: boolean): Directory {
  const node = parent.entries.get(name);
  if (node instanceof Directory) return node;
  // As fs.mkdir({ recursive }): a file in the way is EEXIST at the end, ENOTDIR before it.
  if (node !== undefined) throw storageError('mkdir', dir, last ? 'EEXIST' : 'ENOTDIR');
  const created = new Directory();
  parent.entries.set(name, created);
  parent.durableEntries.set(name, created);
  return created;
}

/** rename() may replace a file with a file or an empty directory with a directory. */
function checkReplaceable(node: Node, target: Node | undefined, paths: string): void {
  if (target === undefined || target === node) return;
  if (node instanceof Inode && target instanceof Directory) throw storageError('rename', paths, 'EISDIR');
  if (node instanceof Directory && target instanceof Inode) throw storageError('rename', paths, 'ENOTDIR');
  if (target instanceof Directory && target.entries.size > 0) throw storageError('rename', paths, 'ENOTEMPTY');
}

/** The names of a '/'-separated relative path; '.' and '' name the root. */
function segments(path: string): string[] {
  assert(!path.startsWith('/'), `absolute path: ${path}`);
  const names = path.split('/').filter((name) => name !== '' && name !== '.');
  assert(!names.includes('..'), `path with '..': ${path}`);
  assert(!path.includes('\0'), 'path with a NUL byte');
  return names;
}

function assertPosition(position: number): void {
  assert(Number.isSafeInteger(position), `position is not an integer: ${position}`);
  assert(position >= 0, `negative position: ${position}`);
}

/** The error NodeDisk raises for a failing fs call, with an errno-like cause. */
function storageError(op: string, path: string, code: string): DriftwoodError {
  const cause = Object.assign(new Error(`${code}: simulated failure, ${op} '${path}'`), { code });
  const error = new DriftwoodError('KAFKA_STORAGE_ERROR', `${op} ${path}: ${cause.message}`);
  error.cause = cause;
  return error;
}
