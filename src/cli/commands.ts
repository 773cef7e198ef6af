// The `driftwood` command's subcommands. Each parses its own flags strictly: an unknown or
// malformed option is a one-line error and exit code 2, before anything is touched.
import { parseArgs } from 'node:util';
import { benchStorage } from '../bench/storage.js';

const USAGE = `usage: driftwood <command> [options]

commands:
  bench storage [--dir DIR] [--bytes N] [--batch-bytes N] [--record-bytes N]
                [--flush-interval-ms N] [--appends-in-flight N] [--json]
      append ~1 GiB through the partition log and compare with plain fs writes
  cluster      start a local three-node cluster (not built yet)
  help         this text`;

export class UsageError extends Error {}

/** Where a command writes: the process's streams for real, buffers in tests. */
export interface CommandIO {
  stdout: (text: string) => void;
  stderr: (text: string) => void;
}

function positiveInteger(name: string, value: string | undefined, fallback: number, min = 1): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < min) throw new UsageError(`--${name} must be an integer >= ${min}, got '${value}'`);
  return parsed;
}

async function runBenchStorage(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      dir: { type: 'string', default: 'data/bench-storage' },
      bytes: { type: 'string' },
      'batch-bytes': { type: 'string' },
      'record-bytes': { type: 'string' },
      'flush-interval-ms': { type: 'string' },
      'appends-in-flight': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const result = await benchStorage({
    dir: values.dir,
    totalBytes: positiveInteger('bytes', values.bytes, 1024 ** 3),
    batchBytes: positiveInteger('batch-bytes', values['batch-bytes'], 16 * 1024, 256),
    recordBytes: positiveInteger('record-bytes', values['record-bytes'], 100),
    flushIntervalMs: positiveInteger('flush-interval-ms', values['flush-interval-ms'], 1000, 0),
    appendsInFlight: positiveInteger('appends-in-flight', values['appends-in-flight'], 4),
    progress: (line) => { io.stderr(`${line}\n`); },
  });
  if (values.json) {
    io.stdout(`${JSON.stringify(result)}\n`);
    return;
  }
  for (const [key, value] of Object.entries(result)) io.stdout(`${key.padEnd(18)} ${String(value)}\n`);
}

async function dispatch(argv: string[], io: CommandIO): Promise<void> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'bench': {
      const [what, ...args] = rest;
      if (what !== 'storage') throw new UsageError(`unknown benchmark '${what ?? ''}' (available: storage)`);
      await runBenchStorage(args, io);
      return;
    }
    case 'cluster':
      io.stdout('driftwood: the cluster is not built yet (the Raft quorum and brokers come next); `make test` and `driftwood bench storage` work today.\n');
      return;
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(`${USAGE}\n`);
      return;
    default:
      throw new UsageError(`unknown command '${command}'`);
  }
}

/** Runs a command line; returns the exit code (0 ok, 1 failed, 2 bad usage). */
export async function run(argv: string[], io: CommandIO): Promise<number> {
  try {
    await dispatch(argv, io);
    return 0;
  } catch (error) {
    const usage = error instanceof UsageError || (error instanceof Error && 'code' in error && String(error.code).startsWith('ERR_PARSE_ARGS'));
    const message = error instanceof Error ? error.message : String(error);
    io.stderr(`driftwood: ${message}\n`);
    if (usage) io.stderr("run 'driftwood help' for usage\n");
    return usage ? 2 : 1;
  }
}
