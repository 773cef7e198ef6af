// Whole-file helpers over the Disk port for the small files next to the log (indexes, the
// leader-epoch checkpoint).
import type { Disk } from './disk.js';

/** Writes a file so that a crash leaves the old or the new one: temporary, sync, rename. */
export async function writeFileAtomically(disk: Disk, path: string, bytes: Buffer): Promise<void> {
  const temporary = `${path}.tmp`;
  const file = await disk.open(temporary, { create: true });
  try {
    await file.truncate(0);
    await file.write(0, [bytes]);
    await file.sync();
  } finally {
    await file.close();
  }
  await disk.rename(temporary, path);
}

/** The file's bytes, or null when it does not exist. */
export async function readWholeFile(disk: Disk, path: string): Promise<Buffer | null> {
  if (!(await disk.exists(path))) return null;
  const file = await disk.open(path, { create: false });
  try {
    return await file.read(0, file.sizeBytes);
  } finally {
    await file.close();
  }
}
