// A Disk whose fsyncs (and, less, writes) take simulated time while the nemesis says the disk
// is slow: the log's group commit, the acks=all path and the high-watermark checkpoint then
// run with a stalled device, as on a real disk with a failing sector or a noisy neighbour.
// The delay comes before the inner operation, so a crash meanwhile finds it not done; an
// operation of a process that died while waiting never runs (its process is gone).
import type { Disk, DiskFile } from '../storage/disk.js';

export interface DiskLatency {
  /** The delay of the next fsync (0: the disk is healthy). */
  readonly syncDelayMs: () => number;
  readonly writeDelayMs: () => number;
  readonly after: (delayMs: number, run: () => void) => void;
  readonly alive: () => boolean;
}

export function slowDisk(inner: Disk, latency: DiskLatency): Disk {
  const delayed = <T>(delayMs: number, run: () => Promise<T>): Promise<T> => {
    if (delayMs <= 0) return run();
    return new Promise<T>((resolve, reject) => {
      latency.after(delayMs, () => {
        if (latency.alive()) run().then(resolve, reject);
      });
    });
  };
  const wrapFile = (file: DiskFile): DiskFile => {
    // Changes to one file keep their order whatever their delays, as a device queue does.
    let tail: Promise<unknown> = Promise.resolve();
    let waiting = 0;
    const queued = <T>(delayMs: number, run: () => Promise<T>): Promise<T> => {
      if (waiting === 0 && delayMs <= 0) return run(); // a healthy disk adds nothing
      waiting += 1;
      const next = tail.then(() => delayed(delayMs, run), () => delayed(delayMs, run)).finally(() => { waiting -= 1; });
      tail = next.catch(() => undefined);
      return next;
    };
    return {
      get sizeBytes() { return file.sizeBytes; },
      write: (position, chunks) => queued(latency.writeDelayMs(), () => file.write(position, chunks)),
      read: (position, length) => file.read(position, length),
      sync: () => queued(latency.syncDelayMs(), () => file.sync()),
      truncate: (sizeBytes) => queued(0, () => file.truncate(sizeBytes)),
      close: () => file.close(),
    };
  };
  return {
    open: async (path, options) => wrapFile(await inner.open(path, options)),
    list: (dir) => inner.list(dir),
    mkdir: (dir) => inner.mkdir(dir),
    rename: (from, to) => inner.rename(from, to),
    remove: (path) => inner.remove(path),
    removeDir: (dir) => inner.removeDir(dir),
    syncDir: (dir) => delayed(latency.syncDelayMs(), () => inner.syncDir(dir)),
    exists: (path) => inner.exists(path),
  };
}
