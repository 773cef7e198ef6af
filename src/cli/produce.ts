// `driftwood produce TOPIC`: one record per line of standard input (kafka-console-producer,
// rpk topic produce). Nothing is printed for records that succeed; each failure is one line on
// stderr (the first few), and a summary line ends the run. The topic must exist: the brokers
// do not create topics on first use, and a producer would otherwise wait out maxBlockMs for
// metadata that never comes.
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { parseArgs } from 'node:util';
import { DriftwoodError } from '../../storage/errors.js';
import { Producer, type Acks } from '../client/producer.js';
import { partitionCount, withAdmin } from './admin.js';
import { clientFlags, errorText, positionals, printJson, ReportedFailure, UsageError, type CommandIO } from './io.js';
import { clientTargetFrom, type ClientTarget } from './security-flags.js';

export const PRODUCE_USAGE = `usage: driftwood produce TOPIC [--key-separator SEP] [--acks 0|1|all] [--bootstrap HOST:PORT,...] [--json]
      one record per line of standard input; with --key-separator the line is split at the
      first SEP into key and value (a line without SEP is a value with a null key); records
      with a key go to the partition murmur2(key) picks, as Kafka's default partitioner
  --acks        all (default) waits for every in-sync replica; 1 for the leader; 0 for nothing
  --bootstrap   any nodes of the cluster (default $DRIFTWOOD_BOOTSTRAP, else 127.0.0.1:9091,9092,9093)
  --token-file  a file holding the cluster's bearer token (default $DRIFTWOOD_TOKEN_FILE)
  --tls-ca      the CA that signed the nodes' certificates: connect over TLS (default
                $DRIFTWOOD_TLS_CA; --tls for TLS with the system's CAs)
  --json        the summary as one JSON document on stdout ({topic, records, errors})
  Prints nothing for records written; failures go to stderr; exit code 1 if any record failed.
  The topic must exist (driftwood topics create TOPIC).`;

/** Records sent and not yet answered at most: bounds memory when stdin is far faster than the cluster. */
const RECORDS_IN_FLIGHT_MAX = 10_000;
/** Failure lines printed at most; the summary counts the rest. */
const ERRORS_SHOWN_MAX = 10;
/** A line longer than this is refused rather than buffered (the broker's max.message.bytes is 1 MiB by default). */
const LINE_CHARS_MAX = 16 * 1024 * 1024;

export interface ProduceSummary {
  readonly topic: string;
  readonly records: number;
  readonly errors: number;
}

export async function runProduce(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...clientFlags, 'key-separator': { type: 'string' }, acks: { type: 'string', default: 'all' } },
  });
  if (values.help) {
    io.stdout(`${PRODUCE_USAGE}\n`);
    return;
  }
  const [topic] = positionals(given, ['TOPIC'], 'produce') as [string];
  const acks = parseAcks(values.acks);
  const separator = values['key-separator'];
  if (separator === '') throw new UsageError('--key-separator must not be empty');
  const cluster = await clientTargetFrom(values, io);
  await withAdmin(cluster, (admin) => partitionCount(admin, topic));
  const summary = await produceLines(io.stdin ?? process.stdin, { ...cluster, topic, acks, ...(separator === undefined ? {} : { separator }) }, io);
  if (values.json) printJson(io, summary);
  else io.stderr(`produced ${summary.records} record${summary.records === 1 ? '' : 's'} to ${topic}, ${summary.errors} error${summary.errors === 1 ? '' : 's'}\n`);
  if (summary.errors > 0) throw new ProduceFailed(summary);
}

/** Exit code 1 without a second error line: the failures and the summary are already printed. */
export class ProduceFailed extends ReportedFailure {
  override readonly name = 'ProduceFailed';
  constructor(readonly summary: ProduceSummary) {
    super(`${summary.errors} of ${summary.records + summary.errors} records failed`);
  }
}

export function parseAcks(text: string): Acks {
  if (text === '0') return 0;
  if (text === '1') return 1;
  if (text === 'all' || text === '-1') return 'all';
  throw new UsageError(`--acks must be 0, 1 or all, got '${text}'`);
}

/** A line as key and value: split at the first separator when one is given. */
export function splitLine(line: string, separator: string | undefined): { key: string | null; value: string } {
  if (separator === undefined) return { key: null, value: line };
  const at = line.indexOf(separator);
  if (at < 0) return { key: null, value: line };
  return { key: line.slice(0, at), value: line.slice(at + separator.length) };
}

interface ProduceTarget extends ClientTarget {
  readonly topic: string;
  readonly acks: Acks;
  readonly separator?: string;
}

/** Sends every line as a record and waits for every answer; counts what was written and what failed. */
export async function produceLines(input: AsyncIterable<string | Buffer>, target: ProduceTarget, io: CommandIO): Promise<ProduceSummary> {
  const { topic: _topic, separator: _separator, ...cluster } = target;
  const producer = new Producer({ ...cluster, clientId: 'driftwood-cli' });
  const inFlight = new Set<Promise<void>>();
  let records = 0;
  let errors = 0;
  const fail = (lineNumber: number, error: unknown): void => {
    errors += 1;
    if (errors <= ERRORS_SHOWN_MAX) io.stderr(`driftwood: line ${lineNumber}: ${errorText(error)}\n`);
    if (errors === ERRORS_SHOWN_MAX + 1) io.stderr('driftwood: (further errors are counted, not shown)\n');
  };
  try {
    let lineNumber = 0;
    for await (const line of createInterface({ input: Readable.from(input), crlfDelay: Infinity })) {
      lineNumber += 1;
      if (line.length > LINE_CHARS_MAX) {
        fail(lineNumber, new DriftwoodError('MESSAGE_TOO_LARGE', `the line has ${line.length} characters`));
        continue;
      }
      const { key, value } = splitLine(line, target.separator);
      const number = lineNumber;
      const sent: Promise<void> = producer.send({ topic: target.topic, key, value }).then(
        () => { records += 1; },
        (error: unknown) => { fail(number, error); },
      ).finally(() => { inFlight.delete(sent); });
      inFlight.add(sent);
      if (inFlight.size >= RECORDS_IN_FLIGHT_MAX) await Promise.race(inFlight);
    }
    await Promise.all(inFlight);
  } finally {
    await producer.close();
  }
  return { topic: target.topic, records, errors };
}
