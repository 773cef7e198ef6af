// `driftwood chaos [--duration-s S] [--seed N] [--partitions N] [--records-per-sec N] [--json]`:
// the chaos run (run.ts) from the command line. Progress goes to stderr; the report to
// stdout (a table, or one JSON document with --json); exit code 0 only when every check passed.
import { randomInt } from 'node:crypto';
import { parseArgs } from 'node:util';
import { ReportedFailure, UsageError, type CommandIO } from '../cli/io.js';
import { runChaos, type ChaosResult } from './run.js';

export const CHAOS_USAGE = `  chaos [--duration-s S] [--seed N] [--partitions N] [--records-per-sec N] [--json]
      3 real nodes on 127.0.0.2-4 behind per-link proxies; 2 idempotent acks=all producers
      and a group of 2 consumers while a seeded nemesis kills -9, pauses and cuts off nodes
      for S seconds (default 180); then checks nothing acknowledged was lost or duplicated,
      per-producer order, consumption, committed offsets and identical replicas on disk`;

const DURATION_S_MAX = 24 * 3600;
const SEED_MAX = 2 ** 31 - 1;

function integerFlag(name: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined) return fallback;
  const parsed = Number(value);
  if (!Number.isSafeInteger(parsed) || parsed < min || parsed > max) throw new UsageError(`--${name} must be an integer from ${min} to ${max}, got '${value}'`);
  return parsed;
}

export async function runChaosCommand(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      'duration-s': { type: 'string' },
      seed: { type: 'string' },
      partitions: { type: 'string' },
      'records-per-sec': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const result = await runChaos({
    durationS: integerFlag('duration-s', values['duration-s'], 180, 1, DURATION_S_MAX),
    seed: integerFlag('seed', values.seed, randomInt(1, SEED_MAX), 0, SEED_MAX),
    partitions: integerFlag('partitions', values.partitions, 4, 1, 64),
    recordsPerSec: integerFlag('records-per-sec', values['records-per-sec'], 100, 1, 100_000),
    progress: (line) => { io.stderr(`${line}\n`); },
  });
  if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
  else printTable(result, io);
  if (!result.passed) {
    io.stderr(`driftwood chaos: FAILED with ${result.violationCount} violation(s) (seed ${result.seed}):\n`);
    for (const violation of result.violations) io.stderr(`  - ${violation}\n`);
    if (result.violationCount > result.violations.length) io.stderr(`  ... and ${result.violationCount - result.violations.length} more\n`);
    throw new ReportedFailure('chaos checks failed');
  }
}

function printTable(result: ChaosResult, io: CommandIO): void {
  for (const [key, value] of Object.entries(result)) {
    if (key === 'violations') continue;
    const text = typeof value === 'object' && value !== null && !Array.isArray(value) ? JSON.stringify(value) : Array.isArray(value) ? value.join(' ') : String(value);
    io.stdout(`${key.padEnd(26)} ${text}\n`);
  }
}
