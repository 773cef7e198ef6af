// The `driftwood` command's subcommands. Each parses its own flags strictly: an unknown or
// malformed option is a one-line error and exit code 2, before anything is touched.
import { parseArgs } from 'node:util';
import { benchIdle, benchProduce } from '../bench/cluster.js';
import { benchStorage } from '../bench/storage.js';
import { PERF_USAGE, runBenchKafka, runBenchPerfConsume, runBenchPerfE2e, runBenchPerfProduce } from '../bench/perf-cli.js';
import { benchFailover } from '../bench/failover.js';
import { benchReassign, formatReassignResult } from '../bench/reassign.js';
import { runBenchAll } from '../bench/suite.js';
import { CHAOS_USAGE, runChaosCommand } from '../chaos/cli.js';
import { defaultBrokerTiming, startBroker } from '../broker/node-broker.js';
import { createNodeLogger, logFormats, logLevels, type LogFormat, type LogLevel } from '../broker/node-logger.js';
import { defaultClusterOptions, runCluster } from './cluster.js';
import { resolveConfig, settingsFromEnv, settingsFromFile, type NodeConfig } from '../config.js';
import type { RaftNode } from '../quorum/raft-node.js';
import { checkDataDirWritable, checkIdentity, checkPortFree, readIdentity, writeIdentity } from '../node-preflight.js';
import { startQuorumServer } from '../quorum/node-quorum-server.js';
import { DriftwoodError } from '../../storage/errors.js';
import { CLUSTER_DESCRIBE_USAGE, runClusterDescribe } from './cluster-describe.js';
import { runClusterHealth } from './cluster-health.js';
import { runConsume } from './consume.js';
import { runGroups } from './groups.js';
import { errorText, isUsageError, ReportedFailure, UsageError, type CommandIO } from './io.js';
import { runProduce } from './produce.js';
import { runBrokers, runClusterRebalance, runPartitions } from './reassign.js';
import { NODE_SECURITY_USAGE, nodeSecurityFlags, nodeSecurityFrom } from './security-flags.js';
import { runTopics } from './topics.js';

const USAGE = `usage: driftwood <command> [options]

commands:
${PERF_USAGE}
      (without --bootstrap each starts --nodes N local nodes, default 3, and removes them after)
  bench idle [--partitions N] [--seconds N] [--json]
      CPU per node with an idle RF 3 topic of N partitions (fetch sessions at rest)
  bench reassign [--bytes N] [--throttle BYTES_PER_SEC] [--records-per-sec N] [--json]
      copy rate of a reassignment (MB/s) with and without the throttle, and the p99 of a
      steady acks=all producer to the moving partition before and during each copy
  bench failover [--records-per-sec N] [--partitions N] [--warmup-seconds N] [--after-kill-seconds N] [--json]
      kill -9 the leader of partition 0 under an idempotent acks=all stream on 3 nodes:
      the produce unavailability window and whether an acknowledged record was lost
  bench all [--json] [--out FILE] [--storage-bytes N] [--produce-seconds N] [--idle-partitions N]
            [--idle-seconds N] [--kafka-records N]
      every benchmark on fresh local clusters: one table against issue 8's targets and issue
      11's (the Kafka listener within 20% of HTTP/2) (make bench)
  bench storage [--dir DIR] [--bytes N] [--batch-bytes N] [--record-bytes N]
                [--flush-interval-ms N] [--appends-in-flight N] [--json]
      append ~1 GiB through the partition log and compare with plain fs writes
  start --id N --peers 1@HOST:PORT,... --data DIR [--listen HOST:PORT] [--voters 1,2,3]
        [--kafka-listen HOST:PORT [--kafka-advertise HOST:PORT] [--kafka-auto-create-topics]]
        [--config FILE.json]    (also DRIFTWOOD_ID, _PEERS, _DATA, _LISTEN, _VOTERS, _CONFIG,
                                 _KAFKA_LISTEN, _KAFKA_ADVERTISE, _KAFKA_AUTO_CREATE_TOPICS)
        [--log-format json|pretty] [--log-level trace|debug|info|warn|error|fatal|silent]
        ${NODE_SECURITY_USAGE}
      run one driftwood node: metadata quorum, controller, broker and the admin API; logs
      go to stderr (JSON lines with nodeId by default).
      --kafka-listen: a Kafka-protocol TCP listener (the APIs ApiVersions advertises); its
      address, or --kafka-advertise's, is registered and listed by GET /v1/brokers;
      --kafka-auto-create-topics: a Kafka Metadata request for a missing topic creates it
      (1 partition, replication factor min(3, live brokers); Kafka's auto.create.topics.enable)
      --auth-token-file: internal routes and every change need 'Authorization: Bearer TOKEN'
      (reads too with --auth-reads token); --tls-*: HTTP/2 and HTTP/1.1 over TLS, peers
      verified with --tls-ca. Every node of a cluster takes the same security flags
  quorum --id N --peers 1@HOST:PORT,... --data DIR [--listen HOST:PORT] [--voters 1,2,3]
         [--config FILE.json]   (also DRIFTWOOD_ID, _PEERS, _DATA, _LISTEN, _VOTERS, _CONFIG)
         [--log-format json|pretty] [--log-level LEVEL]
         ${NODE_SECURITY_USAGE}
      run one node of the bare Raft quorum (HTTP/1.1 and HTTP/2 on one port); peers not in
      --voters observe; SIGTERM hands leadership away and stops
${CHAOS_USAGE}
  sim raft --seeds A..B [--nodes 5] [--bug NAME] [--json] | sim --list-bugs
      run the deterministic Raft simulator under faults
  cluster run [--nodes 3] [--data data] [--base-port 9091]
      a local cluster in the foreground (data kept under DIR/<id>); Ctrl-C stops it

client commands (each takes --bootstrap HOST:PORT,... (default $DRIFTWOOD_BOOTSTRAP, else
127.0.0.1:9091,9092,9093), --token-file FILE (default $DRIFTWOOD_TOKEN_FILE), --tls-ca FILE
(default $DRIFTWOOD_TLS_CA; or --tls for the system's CAs), --json for one JSON document on
stdout, and --help):
  cluster [describe]                 cluster id, controller, brokers alive or fenced
  cluster health                     exit 0 when every partition has a leader and a full ISR,
                                     else 1 with the leaderless and under-replicated listed
  cluster rebalance [--dry-run] [--throttle B/S] [--wait]
                                     even out replicas and preferred leaders across brokers;
                                     prints the plan as a table
  brokers decommission ID [--dry-run] [--throttle B/S] [--wait]
                                     move every replica off a broker before it is stopped
  partitions reassign --topic T --partition P (--replicas 2,3,4 | --cancel) [--throttle B/S] [--wait]
  partitions reassignments           moves in progress: bytes copied and lag per new replica
  topics create NAME [--partitions N] [--replication-factor N] [--config KEY=VALUE ...]
  topics delete NAME | topics describe NAME | topics list
  produce TOPIC [--key-separator SEP] [--acks 0|1|all]
      one record per line of standard input
  consume TOPIC [--group G] [--from-beginning] [--max-messages N] [--timeout-ms T]
                [--format value|json] [--partition P [--offset O]]
      prints records until N, T ms idle, or Ctrl-C (then commits and leaves the group)
  groups list | groups describe G | groups delete G
  groups reset-offsets G --topic T (--to-earliest|--to-latest|--to-offset N|--to-datetime ISO)
                         [--partitions 0,1] [--dry-run]
  help         this text (driftwood COMMAND --help for one command)

exit codes: 0 ok, 1 the operation failed (errors are one line: driftwood: CODE: message),
2 bad usage`;

export { UsageError, type CommandIO } from './io.js';

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

function printResult(result: object, json: boolean, io: CommandIO): void {
  if (json) {
    io.stdout(`${JSON.stringify(result)}\n`);
    return;
  }
  for (const [key, value] of Object.entries(result)) io.stdout(`${key.padEnd(18)} ${Array.isArray(value) ? value.join(' ') : String(value)}\n`);
}

async function runBenchProduce(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      target: { type: 'string' },
      nodes: { type: 'string' },
      partitions: { type: 'string' },
      'replication-factor': { type: 'string' },
      acks: { type: 'string', default: 'all' },
      'record-bytes': { type: 'string' },
      'batch-records': { type: 'string' },
      'requests-in-flight': { type: 'string' },
      seconds: { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const acks = values.acks;
  if (acks !== '0' && acks !== '1' && acks !== 'all') throw new UsageError(`--acks must be 0, 1 or all, got '${acks}'`);
  const nodes = positiveInteger('nodes', values.nodes, 3);
  const replicationFactor = positiveInteger('replication-factor', values['replication-factor'], Math.min(3, nodes));
  if (nodes > 7 || replicationFactor > nodes) throw new UsageError('--nodes must be at most 7 and --replication-factor at most --nodes');
  const result = await benchProduce({
    ...(values.target === undefined ? {} : { target: values.target }),
    nodes,
    partitions: positiveInteger('partitions', values.partitions, nodes),
    replicationFactor,
    acks,
    recordBytes: positiveInteger('record-bytes', values['record-bytes'], 100),
    batchRecords: positiveInteger('batch-records', values['batch-records'], 1000),
    requestsInFlight: positiveInteger('requests-in-flight', values['requests-in-flight'], 16),
    seconds: positiveInteger('seconds', values.seconds, 20),
    progress: (line) => { io.stderr(`${line}\n`); },
  });
  printResult(result, values.json, io);
}

async function runBenchIdle(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: { partitions: { type: 'string' }, seconds: { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const result = await benchIdle({
    partitions: positiveInteger('partitions', values.partitions, 1000),
    seconds: positiveInteger('seconds', values.seconds, 10),
    progress: (line) => { io.stderr(`${line}\n`); },
  });
  printResult(result, values.json, io);
}

async function runBenchFailover(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: {
      'records-per-sec': { type: 'string' },
      partitions: { type: 'string' },
      'record-bytes': { type: 'string' },
      'warmup-seconds': { type: 'string' },
      'after-kill-seconds': { type: 'string' },
      json: { type: 'boolean', default: false },
    },
  });
  const result = await benchFailover({
    recordsPerSec: positiveInteger('records-per-sec', values['records-per-sec'], 2000),
    partitions: positiveInteger('partitions', values.partitions, 3),
    recordBytes: positiveInteger('record-bytes', values['record-bytes'], 100, 8),
    warmupSeconds: positiveInteger('warmup-seconds', values['warmup-seconds'], 5),
    afterKillSeconds: positiveInteger('after-kill-seconds', values['after-kill-seconds'], 15),
    progress: (line) => { io.stderr(`${line}\n`); },
  });
  printResult(result, values.json, io);
}

async function runBenchReassign(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({
    args,
    strict: true,
    allowPositionals: false,
    options: { bytes: { type: 'string' }, throttle: { type: 'string' }, 'records-per-sec': { type: 'string' }, json: { type: 'boolean', default: false } },
  });
  const result = await benchReassign({
    bytes: positiveInteger('bytes', values.bytes, 256 * 1024 * 1024),
    throttleBytesPerSec: positiveInteger('throttle', values.throttle, 20 * 1024 * 1024, 1024),
    recordsPerSec: positiveInteger('records-per-sec', values['records-per-sec'], 1000),
    progress: (line) => { io.stderr(`${line}\n`); },
  });
  if (values.json) io.stdout(`${JSON.stringify(result)}\n`);
  else io.stdout(formatReassignResult(result));
}

const nodeFlags = {
  id: { type: 'string' },
  listen: { type: 'string' },
  'kafka-listen': { type: 'string' },
  'kafka-advertise': { type: 'string' },
  'kafka-auto-create-topics': { type: 'boolean' },
  peers: { type: 'string' },
  data: { type: 'string' },
  voters: { type: 'string' },
  config: { type: 'string' },
  'log-format': { type: 'string' },
  'log-level': { type: 'string' },
  ...nodeSecurityFlags,
} as const;

/** --log-format json|pretty (default json) and --log-level (default info) of `start`. */
function logFlags(args: string[]): { format: LogFormat; level: LogLevel } {
  const { values } = parseArgs({ args, strict: true, allowPositionals: false, options: nodeFlags });
  const format = values['log-format'] ?? 'json';
  const level = values['log-level'] ?? 'info';
  if (!isOneOf(logFormats, format)) throw new UsageError(`--log-format must be ${logFormats.join(' or ')}, got '${format}'`);
  if (!isOneOf(logLevels, level)) throw new UsageError(`--log-level must be one of ${logLevels.join(', ')}, got '${level}'`);
  return { format, level };
}

function isOneOf<T extends string>(allowed: readonly T[], value: string): value is T {
  return (allowed as readonly string[]).includes(value);
}

/**
 * A node's config from a JSON file (--config or DRIFTWOOD_CONFIG), DRIFTWOOD_* variables and
 * flags (flags win), checked with the preflight checks before anything is written; then the
 * node identity is recorded in the data directory.
 */
async function loadNodeConfig(args: string[], mayJoin: boolean): Promise<NodeConfig> {
  const { values } = parseArgs({ args, strict: true, allowPositionals: false, options: nodeFlags });
  const config = await usageAsync(async () => {
    const env = settingsFromEnv(process.env);
    const configPath = values.config ?? process.env.DRIFTWOOD_CONFIG;
    const file = configPath === undefined ? {} : await settingsFromFile(configPath);
    const named = { id: values.id, listen: values.listen, peers: values.peers, data: values.data, voters: values.voters, kafkaListen: values['kafka-listen'], kafkaAdvertise: values['kafka-advertise'], kafkaAutoCreateTopics: values['kafka-auto-create-topics'] };
    const flags = Object.fromEntries(Object.entries(named).filter(([, value]) => value !== undefined));
    const resolved = resolveConfig(file, env, flags);
    // Joining a running cluster goes through the broker registry, which the bare quorum lacks.
    if (!mayJoin && !resolved.peers.some((peer) => peer.id === resolved.id)) throw new DriftwoodError('INVALID_CONFIG', `node id ${resolved.id} is not in the peers list`);
    if (!mayJoin && resolved.kafka !== undefined) throw new DriftwoodError('INVALID_CONFIG', 'the bare quorum has no Kafka listener (--kafka-listen is for driftwood start)');
    const security = await nodeSecurityFrom(values);
    await checkDataDirWritable(resolved.dataDir);
    await checkIdentity(resolved.dataDir, resolved.id);
    await checkPortFree(resolved.host, resolved.port);
    if (resolved.kafka !== undefined) await checkPortFree(resolved.kafka.host, resolved.kafka.port);
    return { ...resolved, security };
  });
  // Keep a cluster id the directory already has; the broker records it on first join.
  const existing = await readIdentity(config.dataDir);
  if (existing === null) await writeIdentity(config.dataDir, { version: 1, nodeId: config.id });
  return config;
}

function untilSignalled(): Promise<void> {
  return new Promise<void>((resolve) => {
    process.once('SIGTERM', resolve);
    process.once('SIGINT', resolve);
  });
}

/** Hands Raft leadership to another voter before stopping (up to 3 s). */
async function handOffRaftLeadership(config: NodeConfig, raft: RaftNode): Promise<void> {
  if (!raft.isLeader) return;
  const successor = config.peers.find((peer) => peer.id !== config.id && (config.voters?.includes(peer.id) ?? true));
  if (successor !== undefined) raft.transferLeadership(successor.id);
  const stillLeads = (): boolean => raft.isLeader;
  for (let waited = 0; stillLeads() && waited < 3000; waited += 50) await new Promise((resolve) => setTimeout(resolve, 50));
}

async function runClusterCommand(args: string[], io: CommandIO): Promise<void> {
  const { values } = parseArgs({ args, strict: true, allowPositionals: false, options: { nodes: { type: 'string' }, data: { type: 'string' }, 'base-port': { type: 'string' } } });
  const nodes = positiveInteger('nodes', values.nodes, defaultClusterOptions.nodes);
  if (nodes > 9) throw new UsageError('--nodes must be 1 to 9');
  const basePort = positiveInteger('base-port', values['base-port'], defaultClusterOptions.basePort);
  if (basePort + nodes - 1 > 65535) throw new UsageError('--base-port leaves no room for the nodes');
  const code = await runCluster({ ...defaultClusterOptions, nodes, basePort, dataDir: values.data ?? defaultClusterOptions.dataDir }, (line) => { io.stdout(`${line}\n`); });
  if (code !== 0) throw new Error('a node exited with an error');
}

/** Runs one quorum node until SIGTERM or SIGINT. */
async function runQuorum(args: string[]): Promise<void> {
  const { format, level } = logFlags(args);
  const config = await loadNodeConfig(args, false);
  const logger = createNodeLogger({ nodeId: config.id, format, level });
  const server = await startQuorumServer({ ...config, logger });
  logger.info({ listen: `${config.host}:${config.port}` }, 'quorum node started');
  await untilSignalled();
  await handOffRaftLeadership(config, server.node);
  await server.close();
  logger.info({}, 'quorum node stopped');
}

/** Runs one driftwood node (metadata quorum, controller, broker, admin API) until SIGTERM or SIGINT. */
async function runStart(args: string[]): Promise<void> {
  const { format, level } = logFlags(args);
  const config = await loadNodeConfig(args, true);
  const logger = createNodeLogger({ nodeId: config.id, format, level });
  const broker = await startBroker(config, defaultBrokerTiming, logger);
  const scheme = config.security?.tls === undefined ? 'http' : 'https';
  const auth = config.security?.auth === undefined ? 'off' : config.security.auth.reads === 'token' ? 'every request' : 'internal routes and changes';
  logger.info({ listen: `${scheme}://${config.host}:${config.port}`, dataDir: config.dataDir, peers: config.peers.length, auth }, 'node started');
  await untilSignalled();
  logger.info({}, 'node stopping');
  // Partition leadership first (while this node may still be the controller), then Raft's.
  await broker.node.controlledShutdown();
  await handOffRaftLeadership(config, broker.node.raft);
  await broker.close();
  logger.info({}, 'node stopped');
}

/** Turns a config error into a usage error (exit code 2). */
async function usageAsync<T>(parse: () => Promise<T>): Promise<T> {
  try {
    return await parse();
  } catch (error) {
    if (error instanceof DriftwoodError && (error.code === 'INVALID_CONFIG' || error.code === 'INCONSISTENT_CLUSTER_ID')) throw new UsageError(error.message);
    throw error;
  }
}


async function dispatch(argv: string[], io: CommandIO): Promise<void> {
  const [command, ...rest] = argv;
  // The node and benchmark commands have their flags in the main usage text.
  const nodeCommand = command === 'bench' || command === 'chaos' || command === 'start' || command === 'quorum' || (command === 'cluster' && rest[0] === 'run');
  if (nodeCommand && (rest.includes('--help') || rest.includes('-h'))) {
    io.stdout(`${USAGE}\n`);
    return;
  }
  switch (command) {
    case 'bench': {
      const [what, ...args] = rest;
      if (what === 'storage') await runBenchStorage(args, io);
      else if (what === 'produce') await runBenchPerfProduce(args, io);
      else if (what === 'raw-produce') await runBenchProduce(args, io);
      else if (what === 'consume') await runBenchPerfConsume(args, io);
      else if (what === 'e2e') await runBenchPerfE2e(args, io);
      else if (what === 'idle') await runBenchIdle(args, io);
      else if (what === 'failover') await runBenchFailover(args, io);
      else if (what === 'reassign') await runBenchReassign(args, io);
      else if (what === 'kafka') await runBenchKafka(args, io);
      else if (what === 'all') await runBenchAll(args, io);
      else throw new UsageError(`unknown benchmark '${what ?? ''}' (available: storage, produce, consume, e2e, raw-produce, kafka, idle, failover, reassign, all)`);
      return;
    }
    case 'chaos':
      await runChaosCommand(rest, io);
      return;
    case 'quorum':
      await runQuorum(rest);
      return;
    case 'start':
      await runStart(rest);
      return;
    case 'cluster':
      // `cluster run` is the local cluster make cluster starts; anything else describes one.
      if (rest[0] === 'run') await runClusterCommand(rest.slice(1), io);
      else if (rest[0] === 'health') await runClusterHealth(rest.slice(1), io);
      else if (rest[0] === 'rebalance') await runClusterRebalance(rest.slice(1), io);
      else if (rest[0] === 'help') io.stdout(`${CLUSTER_DESCRIBE_USAGE}\n`);
      else await runClusterDescribe(rest[0] === 'describe' ? rest.slice(1) : rest, io);
      return;
    case 'topics':
      await runTopics(rest, io);
      return;
    case 'groups':
      await runGroups(rest, io);
      return;
    case 'partitions':
      await runPartitions(rest, io);
      return;
    case 'brokers':
      await runBrokers(rest, io);
      return;
    case 'produce':
      await runProduce(rest, io);
      return;
    case 'consume':
      await runConsume(rest, io);
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

/** Each command, with its subcommands: where a usage error points for help. */
const COMMAND_WORDS: Readonly<Record<string, readonly string[]>> = {
  topics: ['create', 'delete', 'describe', 'list'],
  groups: ['list', 'describe', 'reset-offsets', 'delete'],
  cluster: ['describe', 'health', 'run'],
  produce: [],
  consume: [],
  bench: ['storage', 'produce', 'consume', 'e2e', 'raw-produce', 'kafka', 'idle', 'failover', 'reassign', 'all'],
  chaos: [],
  start: [],
  quorum: [],
};

/** "topics create " for `driftwood topics create --bad`; "" when the command is unknown. */
function helpFor(argv: readonly string[]): string {
  const [command = '', sub = ''] = argv;
  const subs = COMMAND_WORDS[command];
  if (subs === undefined) return '';
  return subs.includes(sub) ? `${command} ${sub} ` : `${command} `;
}

/** Runs a command line; returns the exit code (0 ok, 1 failed, 2 bad usage). */
export async function run(argv: string[], io: CommandIO): Promise<number> {
  try {
    await dispatch(argv, io);
    return 0;
  } catch (error) {
    if (error instanceof ReportedFailure) return 1;
    // One line, no stack: "CODE: message" for the cluster's errors.
    const usage = isUsageError(error);
    io.stderr(`driftwood: ${errorText(error)}${usage ? ` (see 'driftwood ${helpFor(argv)}--help')` : ''}\n`);
    return usage ? 2 : 1;
  }
}
