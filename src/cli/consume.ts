// `driftwood consume TOPIC`: prints records as they come (kafka-console-consumer, rpk topic
// consume). With --group it joins the group and commits what it printed; without, it reads
// every partition of the topic on its own (or the one --partition names) and commits
// nothing. It stops after --max-messages records, after --timeout-ms without a new record,
// or at SIGINT/SIGTERM; then it commits (in a group) and leaves the group before exiting.
import { parseArgs } from 'node:util';
import type { ErrorCode } from '../../storage/errors.js';
import { Consumer, type ConsumerOptions, type ConsumerRecord, type TopicPartition } from '../client/consumer.js';
import { partitionCount, withAdmin } from './admin.js';
import { clientFlags, errorText, integerFlag, positionals, UsageError, type CommandIO } from './io.js';
import { clientTargetFrom, type ClientTarget } from './security-flags.js';

export const CONSUME_USAGE = `usage: driftwood consume TOPIC [--group GROUP] [--from-beginning] [--max-messages N] [--timeout-ms T]
                        [--format value|json] [--partition P [--offset O|earliest|latest]]
                        [--bootstrap HOST:PORT,...]
      prints each record's value on its own line (--format json: one JSON object per line
      with topic, partition, offset, key, value, timestamp, headers; --json is the same)
  --group           join this consumer group: its partitions are shared among its members,
                    reading starts at its committed offsets, and what was printed is committed
                    (every 5 s, when partitions move, and on exit)
  --from-beginning  where there is no committed offset, start at the log start (default: the end,
                    only records produced from now on)
  --max-messages    stop after N records
  --timeout-ms      stop after T ms without a new record (default: run until Ctrl-C or SIGTERM)
  --partition       read only this partition (not with --group); --offset says where to start
  --bootstrap       any nodes of the cluster (default $DRIFTWOOD_BOOTSTRAP, else 127.0.0.1:9091,9092,9093)
  --token-file      a file holding the cluster's bearer token (default $DRIFTWOOD_TOKEN_FILE)
  --tls-ca          the CA that signed the nodes' certificates: connect over TLS (default
                    $DRIFTWOOD_TLS_CA; --tls for TLS with the system's CAs)
  Keys and values are printed as UTF-8 text; a null value prints as null. A summary goes to stderr.`;

/** How long one poll waits, so that an interrupt or the idle timeout is noticed within it. */
const POLL_SLICE_MS = 250;
/** Answers the consumer retries by itself while a group's coordinator starts or moves: not worth a warning. */
const COORDINATOR_SETTLING_CODES: ReadonlySet<ErrorCode> = new Set<ErrorCode>(['COORDINATOR_NOT_AVAILABLE', 'COORDINATOR_LOAD_IN_PROGRESS', 'NOT_COORDINATOR']);
/** Records one poll returns at most (the library's default). */
const POLL_RECORDS_MAX = 500;

export type ConsumeFormat = 'value' | 'json';

export interface ConsumePlan {
  readonly topic: string;
  readonly group: string | null;
  readonly fromBeginning: boolean;
  readonly maxMessages: number | null;
  readonly timeoutMs: number | null;
  readonly format: ConsumeFormat;
  readonly partition: number | null;
  /** A number, or the log's start or end; null: per --from-beginning. */
  readonly offset: number | 'earliest' | 'latest' | null;
}

interface ConsumeFlags {
  readonly group?: string | undefined;
  readonly 'from-beginning': boolean;
  readonly 'max-messages'?: string | undefined;
  readonly 'timeout-ms'?: string | undefined;
  readonly format?: string | undefined;
  readonly json: boolean;
  readonly partition?: string | undefined;
  readonly offset?: string | undefined;
}

/** The flags as a plan, refusing combinations that contradict each other. */
export function consumePlan(topic: string, values: ConsumeFlags): ConsumePlan {
  const format = values.json ? 'json' : values.format ?? 'value';
  if (format !== 'value' && format !== 'json') throw new UsageError(`--format must be value or json, got '${format}'`);
  if (values.json && values.format !== undefined && values.format !== 'json') throw new UsageError('--json and --format value contradict each other');
  if (values.group === '') throw new UsageError('--group must not be empty');
  const partition = values.partition === undefined ? null : integerFlag('partition', values.partition, 0, 0);
  if (partition !== null && values.group !== undefined) throw new UsageError('--partition reads one partition on its own; it does not go with --group');
  if (values.offset !== undefined && partition === null) throw new UsageError('--offset needs --partition');
  if (values.offset !== undefined && values['from-beginning']) throw new UsageError('--offset and --from-beginning contradict each other');
  const offset = values.offset === undefined ? null : values.offset === 'earliest' || values.offset === 'latest' ? values.offset : integerFlag('offset', values.offset, 0, 0);
  return {
    topic,
    group: values.group ?? null,
    fromBeginning: values['from-beginning'],
    maxMessages: values['max-messages'] === undefined ? null : integerFlag('max-messages', values['max-messages'], 1, 1),
    timeoutMs: values['timeout-ms'] === undefined ? null : integerFlag('timeout-ms', values['timeout-ms'], 0, 1),
    format,
    partition,
    offset,
  };
}

export async function runConsume(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...clientFlags,
      group: { type: 'string' },
      'from-beginning': { type: 'boolean', default: false },
      'max-messages': { type: 'string' },
      'timeout-ms': { type: 'string' },
      format: { type: 'string' },
      partition: { type: 'string' },
      offset: { type: 'string' },
    },
  });
  if (values.help) {
    io.stdout(`${CONSUME_USAGE}\n`);
    return;
  }
  const [topic] = positionals(given, ['TOPIC'], 'consume') as [string];
  const plan = consumePlan(topic, values);
  const cluster = await clientTargetFrom(values, io);
  const partitions = await withAdmin(cluster, (admin) => partitionCount(admin, topic));
  if (plan.partition !== null && plan.partition >= partitions) throw new UsageError(`${topic} has ${partitions} partition${partitions === 1 ? '' : 's'}; --partition ${plan.partition} is not one of them`);
  const consumed = await consume(plan, partitions, cluster, io);
  io.stderr(`consumed ${consumed} record${consumed === 1 ? '' : 's'}\n`);
}

/** Reads and prints until the plan says stop or the run is interrupted; returns the records printed. */
async function consume(plan: ConsumePlan, partitions: number, cluster: ClientTarget, io: CommandIO): Promise<number> {
  const options: ConsumerOptions = {
    ...cluster,
    clientId: 'driftwood-cli',
    autoOffsetReset: plan.fromBeginning || plan.offset === 'earliest' ? 'earliest' : 'latest',
    pollRecordsMax: POLL_RECORDS_MAX,
    ...(plan.group === null ? {} : { groupId: plan.group }),
    onError: (error) => {
      if (!COORDINATOR_SETTLING_CODES.has(error.code)) io.stderr(`driftwood: warning: ${errorText(error)}\n`);
    },
  };
  const consumer = new Consumer(options);
  const stop = interruption(io);
  let printed = 0;
  try {
    if (plan.group !== null) consumer.subscribe([plan.topic]);
    else await assignPartitions(consumer, plan, partitions);
    let idleSinceMs = performance.now();
    while (!stop.signal.aborted && (plan.maxMessages === null || printed < plan.maxMessages)) {
      const records = await consumer.poll(POLL_SLICE_MS);
      if (records.length === 0) {
        if (plan.timeoutMs !== null && performance.now() - idleSinceMs >= plan.timeoutMs) break;
        continue;
      }
      idleSinceMs = performance.now();
      const room = plan.maxMessages === null ? records.length : plan.maxMessages - printed;
      const shown = records.slice(0, room);
      io.stdout(shown.map((record) => formatRecord(record, plan.format)).join(''));
      printed += shown.length;
      // Positions moved past every record poll returned: move back to the first one not
      // printed, so that the commit on close counts only what was printed.
      rewindUnprinted(consumer, records.slice(room));
    }
  } finally {
    stop.dispose();
    await consumer.close();
  }
  return printed;
}

async function assignPartitions(consumer: Consumer, plan: ConsumePlan, partitions: number): Promise<void> {
  const assigned: TopicPartition[] = plan.partition === null
    ? Array.from({ length: partitions }, (_, partition) => ({ topic: plan.topic, partition }))
    : [{ topic: plan.topic, partition: plan.partition }];
  consumer.assign(assigned);
  if (typeof plan.offset === 'number') consumer.seek(assigned[0] as TopicPartition, plan.offset);
  else if (plan.offset === 'latest') await consumer.seekToEnd(assigned);
  else if (plan.offset === 'earliest') await consumer.seekToBeginning(assigned);
}

function rewindUnprinted(consumer: Consumer, unprinted: readonly ConsumerRecord[]): void {
  const first = new Map<string, ConsumerRecord>();
  for (const record of unprinted) {
    const key = `${record.partition}:${record.topic}`;
    if (!first.has(key)) first.set(key, record);
  }
  for (const record of first.values()) consumer.seek({ topic: record.topic, partition: record.partition }, record.offset);
}

function text(bytes: Buffer | null): string | null {
  return bytes === null ? null : bytes.toString('utf8');
}

/** One output line: the value, or the record as JSON (headers as an object, as the broker's JSON fetch has them). */
export function formatRecord(record: ConsumerRecord, format: ConsumeFormat): string {
  if (format === 'value') return `${text(record.value) ?? 'null'}\n`;
  const headers = Object.fromEntries(record.headers.map((h) => [h.key, text(h.value)]));
  return `${JSON.stringify({ topic: record.topic, partition: record.partition, offset: record.offset, key: text(record.key), value: text(record.value), timestamp: record.timestampMs, headers })}\n`;
}

/**
 * io.interrupt (else SIGINT or SIGTERM, for as long as the command runs: their default,
 * exiting at once, is back after) or stdout's reader going away.
 */
function interruption(io: CommandIO): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const abort = (): void => { controller.abort(); };
  const signals = [io.interrupt, io.outputClosed].filter((signal): signal is AbortSignal => signal !== undefined);
  for (const signal of signals) {
    if (signal.aborted) controller.abort();
    signal.addEventListener('abort', abort, { once: true });
  }
  const processSignals = io.interrupt === undefined ? (['SIGINT', 'SIGTERM'] as const) : [];
  for (const name of processSignals) process.on(name, abort);
  return {
    signal: controller.signal,
    dispose: () => {
      for (const signal of signals) signal.removeEventListener('abort', abort);
      for (const name of processSignals) process.off(name, abort);
    },
  };
}
