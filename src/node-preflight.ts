// Checks a node makes before it writes anything: the port is free, the data directory can be
// written, and a data directory that already holds a node's state holds this node's.
// The identity lives in <data>/node.json (Kafka keeps the same in meta.properties).
import { constants } from 'node:fs';
import { access, mkdir, readFile, rename, stat, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { dirname, join, resolve } from 'node:path';
import { DriftwoodError } from '../storage/errors.js';

export interface NodeIdentity {
  readonly version: 1;
  readonly nodeId: number;
  /** Set once the node has joined a cluster; a data dir is never reused for another. */
  readonly clusterId?: string;
}

export const IDENTITY_FILE = 'node.json';

/** Fails with INVALID_CONFIG when nothing can listen on host:port right now. */
export async function checkPortFree(host: string, port: number): Promise<void> {
  await new Promise<void>((done, fail) => {
    const probe = net.createServer();
    probe.once('error', (error: NodeJS.ErrnoException) => {
      const why = error.code === 'EADDRINUSE' ? 'is in use' : `cannot be listened on (${error.code ?? error.message})`;
      fail(new DriftwoodError('INVALID_CONFIG', `${host}:${port} ${why}`));
    });
    probe.listen({ host, port, exclusive: true }, () => { probe.close(() => { done(); }); });
  });
}

/** Fails with INVALID_CONFIG unless `dir` (or the nearest existing parent it would be made in) is a writable directory. */
export async function checkDataDirWritable(dir: string): Promise<void> {
  let candidate = resolve(dir);
  for (;;) {
    const info = await stat(candidate).catch(() => null);
    if (info !== null) {
      if (!info.isDirectory()) throw new DriftwoodError('INVALID_CONFIG', `data directory ${dir}: ${candidate} is not a directory`);
      try {
        await access(candidate, constants.W_OK | constants.X_OK);
      } catch {
        throw new DriftwoodError('INVALID_CONFIG', `data directory ${dir}: ${candidate} is not writable`);
      }
      return;
    }
    const parent = dirname(candidate);
    if (parent === candidate) throw new DriftwoodError('INVALID_CONFIG', `data directory ${dir}: no existing parent`);
    candidate = parent;
  }
}

export async function readIdentity(dataDir: string): Promise<NodeIdentity | null> {
  const path = join(dataDir, IDENTITY_FILE);
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw new DriftwoodError('KAFKA_STORAGE_ERROR', `cannot read ${path}: ${(error as Error).message}`);
  }
  const parsed = JSON.parse(text) as Partial<NodeIdentity>;
  if (parsed.version !== 1 || typeof parsed.nodeId !== 'number') throw new DriftwoodError('INCONSISTENT_CLUSTER_ID', `${path} is not a driftwood node identity`);
  return parsed as NodeIdentity;
}

/** Refuses a data directory that belongs to another node (INCONSISTENT_CLUSTER_ID). */
export async function checkIdentity(dataDir: string, nodeId: number): Promise<void> {
  const identity = await readIdentity(dataDir);
  if (identity !== null && identity.nodeId !== nodeId) {
    throw new DriftwoodError('INCONSISTENT_CLUSTER_ID', `data directory ${dataDir} belongs to node ${identity.nodeId}, not ${nodeId}`);
  }
}

/** Writes the identity atomically (temporary file, rename). */
export async function writeIdentity(dataDir: string, identity: NodeIdentity): Promise<void> {
  await mkdir(dataDir, { recursive: true });
  const path = join(dataDir, IDENTITY_FILE);
  await writeFile(`${path}.tmp`, `${JSON.stringify(identity)}\n`, { flush: true });
  await rename(`${path}.tmp`, path);
}
