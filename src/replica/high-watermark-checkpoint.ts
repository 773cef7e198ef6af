// The high watermarks of hosted partitions, kept in one file at the root of the log
// directory (Kafka's replication-offset-checkpoint): written every few seconds and at a
// clean stop by writing a temporary file, syncing it and renaming it over the old one, so a
// crash leaves the old or the new file, never half of one. On restart a partition starts
// from its checkpointed high watermark (at most its log end) instead of 0.
import type { Disk } from '../../storage/disk.js';
import { DriftwoodError } from '../../storage/errors.js';

const FILE = 'replication-offset-checkpoint';
const TEMPORARY = `${FILE}.tmp`;
const VERSION = 0;
/** Bytes the file may have at most (a partition's line is well under 400 bytes). */
const FILE_BYTES_MAX = 64 * 1024 * 1024;

/** Reads the checkpoint: partition directory -> high watermark. A missing file is an empty map. */
export async function readHighWatermarks(disk: Disk): Promise<Map<string, number>> {
  if (!(await disk.exists(FILE))) return new Map();
  const file = await disk.open(FILE, { create: false });
  let text: string;
  try {
    if (file.sizeBytes > FILE_BYTES_MAX) throw corrupt(`larger than ${FILE_BYTES_MAX} bytes`);
    text = (await file.read(0, file.sizeBytes)).toString('utf8');
  } finally {
    await file.close();
  }
  const lines = text.split('\n').filter((line) => line.length > 0);
  if (lines[0] !== String(VERSION)) throw corrupt(`unknown version '${lines[0] ?? ''}'`);
  const count = Number(lines[1]);
  if (!Number.isSafeInteger(count) || count !== lines.length - 2) throw corrupt('the entry count does not match');
  const marks = new Map<string, number>();
  for (const line of lines.slice(2)) {
    const space = line.lastIndexOf(' ');
    const offset = Number(line.slice(space + 1));
    if (space <= 0 || !Number.isSafeInteger(offset) || offset < 0) throw corrupt(`bad line '${line}'`);
    marks.set(line.slice(0, space), offset);
  }
  return marks;
}

export async function writeHighWatermarks(disk: Disk, marks: ReadonlyMap<string, number>): Promise<void> {
  const lines = [String(VERSION), String(marks.size), ...[...marks].map(([dir, offset]) => `${dir} ${offset}`)];
  await disk.remove(TEMPORARY);
  const file = await disk.open(TEMPORARY, { create: true });
  try {
    await file.write(0, [Buffer.from(`${lines.join('\n')}\n`, 'utf8')]);
    await file.sync();
  } finally {
    await file.close();
  }
  await disk.rename(TEMPORARY, FILE);
  await disk.syncDir('.');
}

function corrupt(why: string): DriftwoodError {
  return new DriftwoodError('KAFKA_STORAGE_ERROR', `${FILE}: ${why}`);
}
