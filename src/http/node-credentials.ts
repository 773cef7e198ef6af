// Reads the files that hold credentials (the bearer token, TLS certificates and keys), once,
// at start: a missing, empty or oversized file is a one-line INVALID_CONFIG error naming the
// flag and the path, never the contents.
import { open } from 'node:fs/promises';
import { DriftwoodError } from '../../storage/errors.js';
import { TOKEN_BYTES_MAX, tokenProblem } from './auth.js';

/** A PEM file (a certificate chain, a key or a CA bundle) larger than this is not one. */
const PEM_FILE_BYTES_MAX = 1024 * 1024;
/** A token file may hold the token, surrounding whitespace and a newline; not much more. */
const TOKEN_FILE_BYTES_MAX = TOKEN_BYTES_MAX + 256;

/** Reads at most `bytesMax` bytes of `path`; more is an error, as is an unreadable file. */
async function readBounded(path: string, flag: string, bytesMax: number): Promise<Buffer> {
  let handle;
  try {
    handle = await open(path, 'r');
  } catch (error) {
    throw new DriftwoodError('INVALID_CONFIG', `${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  try {
    // One byte past the limit tells an oversized file from one exactly at it, without reading
    // all of something like /dev/zero.
    const buffer = Buffer.alloc(bytesMax + 1);
    let filled = 0;
    for (;;) {
      const { bytesRead } = await handle.read(buffer, filled, buffer.length - filled, null);
      if (bytesRead === 0) break;
      filled += bytesRead;
      if (filled > bytesMax) throw new DriftwoodError('INVALID_CONFIG', `${flag}: ${path} is larger than ${bytesMax} bytes`);
    }
    return buffer.subarray(0, filled);
  } catch (error) {
    if (error instanceof DriftwoodError) throw error;
    throw new DriftwoodError('INVALID_CONFIG', `${flag}: cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  } finally {
    await handle.close();
  }
}

/** The bearer token in `path`, trimmed; refused when empty, too long or not visible ASCII. */
export async function readTokenFile(path: string, flag: string): Promise<string> {
  const token = (await readBounded(path, flag, TOKEN_FILE_BYTES_MAX)).toString('utf8').trim();
  const problem = tokenProblem(token);
  if (problem !== null) throw new DriftwoodError('INVALID_CONFIG', `${flag}: the token in ${path} ${problem}`);
  return token;
}

/** A PEM file's bytes; refused when empty or without a PEM block. */
export async function readPemFile(path: string, flag: string): Promise<Buffer> {
  const bytes = await readBounded(path, flag, PEM_FILE_BYTES_MAX);
  if (!bytes.includes('-----BEGIN ')) throw new DriftwoodError('INVALID_CONFIG', `${flag}: ${path} holds no PEM block (-----BEGIN ...)`);
  return bytes;
}
