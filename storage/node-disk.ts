// The real Disk: node:fs/promises under one root directory. Every path the log hands in is
// relative to that root, so a broker's data directory is the only place it can touch.
import assert from 'node:assert/strict';
import { constants } from 'node:fs';
import * as fs from 'node:fs/promises';
import * as nodePath from 'node:path';
import type { Disk, DiskFile } from './disk.js';
import { DriftwoodError } from './errors.js';

// A positional write that writes nothing at all would loop forever; real disks return at
// least one byte or fail, so a bounded number of zero-length rounds means a broken system.
const shortWriteRoundsMax = 1000;

export class NodeDisk implements Disk {
  readonly rootDir: string;

  constructor(rootDir: string) {
    assert(rootDir.length > 0, 'rootDir must not be empty');
    this.rootDir = nodePath.resolve(rootDir);
  }

  async open(path: string, options: { create: boolean }): Promise<DiskFile> {
    const fullPath = this.resolve(path);
    // O_RDWR without O_APPEND: with O_APPEND Linux ignores the position of pwrite.
    const flags = options.create ? constants.O_RDWR | constants.O_CREAT : constants.O_RDWR;
    const handle = await io('open', path, () => fs.open(fullPath, flags, 0o644));
    try {
      const stats = await io('stat', path, () => handle.stat());
      assert(stats.isFile(), `not a regular file: ${path}`);
      return new NodeDiskFile(handle, path, stats.size);
    } catch (error) {
      await handle.close();
      throw error;
    }
  }

  async list(dir: string): Promise<string[]> {
    const fullPath = this.resolve(dir);
    return io('readdir', dir, () => fs.readdir(fullPath));
  }

  async mkdir(dir: string): Promise<void> {
    const fullPath = this.resolve(dir);
    await io('mkdir', dir, () => fs.mkdir(fullPath, { recursive: true }));
  }

  async rename(from: string, to: string): Promise<void> {
    const fromPath = this.resolve(from);
    const toPath = this.resolve(to);
    await io('rename', `${from} -> ${to}`, () => fs.rename(fromPath, toPath));
  }

  async remove(path: string): Promise<void> {
    const fullPath = this.resolve(path);
    try {
      await io('unlink', path, () => fs.unlink(fullPath));
    } catch (error) {
      // Removing a missing file is not an error: a retried cleanup finds it gone.
      if (error instanceof DriftwoodError && error.code === 'NOT_FOUND') return;
      throw error;
    }
  }

  async removeDir(dir: string): Promise<void> {
    const fullPath = this.resolve(dir);
    assert(fullPath !== this.rootDir, 'removeDir of the root directory');
    await io('rm', dir, () => fs.rm(fullPath, { recursive: true, force: true, maxRetries: 0 }));
  }

  async syncDir(dir: string): Promise<void> {
    const fullPath = this.resolve(dir);
    // fsync on a directory opened read-only is how POSIX makes its entries durable.
    const handle = await io('open', dir, () => fs.open(fullPath, constants.O_RDONLY));
    try {
      await io('fsync', dir, () => handle.sync());
    } finally {
      await handle.close();
    }
  }

  async exists(path: string): Promise<boolean> {
    const fullPath = this.resolve(path);
    try {
      await io('stat', path, () => fs.stat(fullPath));
      return true;
    } catch (error) {
      if (error instanceof DriftwoodError && error.code === 'NOT_FOUND') return false;
      throw error;
    }
  }

  /** Maps a root-relative path to an absolute one; anything escaping the root is a bug. */
  private resolve(path: string): string {
    assertRelativePath(path);
    const fullPath = nodePath.join(this.rootDir, path);
    assert(fullPath === this.rootDir || fullPath.startsWith(this.rootDir + nodePath.sep), `path escapes the root: ${path}`);
    return fullPath;
  }
}

class NodeDiskFile implements DiskFile {
  private size: number;
  private closed = false;

  constructor(private readonly handle: fs.FileHandle, private readonly path: string, sizeBytes: number) {
    assert(Number.isSafeInteger(sizeBytes) && sizeBytes >= 0);
    this.size = sizeBytes;
  }

  get sizeBytes(): number {
    return this.size;
  }

  async write(position: number, chunks: readonly Uint8Array[]): Promise<void> {
    this.assertOpen();
    assertPosition(position);
    // The partition log's usual case, one batch: a single pwrite, no arrays made on the way.
    const only = chunks.length === 1 ? chunks[0] : undefined;
    if (only !== undefined) {
      const result = await io('write', this.path, () => this.handle.write(only, 0, only.byteLength, position));
      if (result.bytesWritten === only.byteLength) {
        this.size = Math.max(this.size, position + only.byteLength);
        return;
      }
    }
    const total = chunks.reduce((sum, chunk) => sum + chunk.byteLength, 0);
    let pending = chunks.filter((chunk) => chunk.byteLength > 0);
    let written = 0;
    for (let round = 0; pending.length > 0; round++) {
      assert(round < shortWriteRoundsMax, `write made no progress: ${this.path}`);
      const bytesWritten = await this.writeOnce(position + written, pending);
      written += bytesWritten;
      pending = dropPrefix(pending, bytesWritten);
    }
    assert.equal(written, total);
    this.size = Math.max(this.size, position + total);
  }

  async read(position: number, length: number): Promise<Buffer> {
    this.assertOpen();
    assertPosition(position);
    assert(Number.isSafeInteger(length) && length >= 0, `bad read length: ${length}`);
    // Unzeroed: every byte returned is overwritten by the read, the rest is cut off below.
    const buffer = Buffer.allocUnsafe(length);
    let filled = 0;
    // A regular file reads short only at its end; the loop also covers a signal-interrupted read.
    while (filled < length) {
      const { bytesRead } = await io('read', this.path, () => this.handle.read(buffer, filled, length - filled, position + filled));
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
    assert(filled <= length);
    return filled === length ? buffer : buffer.subarray(0, filled);
  }

  async sync(): Promise<void> {
    this.assertOpen();
    await io('fdatasync', this.path, () => this.handle.datasync());
  }

  async truncate(sizeBytes: number): Promise<void> {
    this.assertOpen();
    assertPosition(sizeBytes);
    await io('ftruncate', this.path, () => this.handle.truncate(sizeBytes));
    this.size = sizeBytes;
  }

  async close(): Promise<void> {
    this.assertOpen();
    this.closed = true;
    await io('close', this.path, () => this.handle.close());
  }

  private async writeOnce(position: number, chunks: readonly Uint8Array[]): Promise<number> {
    assert(chunks.length > 0);
    const first = chunks[0];
    if (chunks.length === 1 && first !== undefined) {
      const result = await io('write', this.path, () => this.handle.write(first, 0, first.byteLength, position));
      return result.bytesWritten;
    }
    const result = await io('writev', this.path, () => this.handle.writev([...chunks], position));
    return result.bytesWritten;
  }

  private assertOpen(): void {
    assert(!this.closed, `file is closed: ${this.path}`);
  }
}

/** Paths are '/'-separated and relative to the disk's root; '..' or an absolute path is a bug. */
function assertRelativePath(path: string): void {
  assert(!path.startsWith('/') && !nodePath.isAbsolute(path), `absolute path: ${path}`);
  assert(!path.split('/').includes('..'), `path with '..': ${path}`);
  assert(!path.includes('\0'), 'path with a NUL byte');
}

function assertPosition(position: number): void {
  assert(Number.isSafeInteger(position), `position is not an integer: ${position}`);
  assert(position >= 0, `negative position: ${position}`);
}

/** The chunks that remain after the first `bytes` bytes were written. */
function dropPrefix(chunks: readonly Uint8Array[], bytes: number): Uint8Array[] {
  const remaining: Uint8Array[] = [];
  let skip = bytes;
  for (const chunk of chunks) {
    if (skip >= chunk.byteLength) {
      skip -= chunk.byteLength;
      continue;
    }
    remaining.push(skip === 0 ? chunk : chunk.subarray(skip));
    skip = 0;
  }
  assert.equal(skip, 0, 'wrote more bytes than were given');
  return remaining;
}

/**
 * Runs one fs call and turns its failure into a DriftwoodError: ENOENT means the name is not
 * there (NOT_FOUND, the caller's business); anything else is a failing disk, which takes the
 * log offline (KAFKA_STORAGE_ERROR). Assertion errors pass through: they are bugs.
 */
async function io<T>(op: string, path: string, call: () => Promise<T>): Promise<T> {
  try {
    return await call();
  } catch (error) {
    throw toDriftwoodError(op, path, error);
  }
}

function toDriftwoodError(op: string, path: string, error: unknown): unknown {
  if (!(error instanceof Error) || error instanceof assert.AssertionError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const wrapped = code === 'ENOENT'
    ? new DriftwoodError('NOT_FOUND', path)
    : new DriftwoodError('KAFKA_STORAGE_ERROR', `${op} ${path}: ${error.message}`);
  wrapped.cause = error;
  return wrapped;
}
