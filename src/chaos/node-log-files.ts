// Reads a partition's log straight from a stopped node's data directory: every segment file
// (<baseOffset>.log, zero-padded so that names sort by offset) back to back.
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';

const SEGMENT_SUFFIX = '.log';
/** Segment bytes one partition read may hold at most (the checks keep them in memory). */
const PARTITION_BYTES_MAX = 1024 ** 3;

/** The partition's directory as the replica manager names it: `<topic>-<partition>.<topicId>`. */
export function partitionDirName(topic: string, topicId: string, partition: number): string {
  return `${topic}-${partition}.${topicId}`;
}

/** The concatenated segments of one partition on one node; empty when the node has none. */
export async function readPartitionLog(dataDir: string, topic: string, topicId: string, partition: number): Promise<Buffer> {
  const dir = join(dataDir, 'logs', partitionDirName(topic, topicId, partition));
  const names = await readdir(dir).catch((error: unknown) => {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return [];
    throw error;
  });
  const segments = names.filter((name) => name.endsWith(SEGMENT_SUFFIX)).sort();
  const parts: Buffer[] = [];
  let bytes = 0;
  for (const name of segments) {
    const part = await readFile(join(dir, name));
    bytes += part.length;
    if (bytes > PARTITION_BYTES_MAX) throw new Error(`chaos: partition ${partition} on ${dataDir} holds more than ${PARTITION_BYTES_MAX} bytes`);
    parts.push(part);
  }
  return Buffer.concat(parts);
}
