// `driftwood topics create|delete|describe|list`, in the spirit of kafka-topics and rpk topic.
import { parseArgs } from 'node:util';
import type { TopicDescription } from '../client/admin.js';
import { withAdmin } from './admin.js';
import { cell, clientFlags, fields, integerFlag, positionals, printJson, table, UsageError, type CommandIO } from './io.js';
import { clientTargetFrom } from './security-flags.js';

const CLIENT_OPTIONS = '[--bootstrap HOST:PORT,...] [--token-file FILE] [--tls-ca FILE] [--json]';

export const TOPICS_USAGE = `usage: driftwood topics <create|delete|describe|list> [options]

  topics create NAME [--partitions N] [--replication-factor N] [--config KEY=VALUE ...] ${CLIENT_OPTIONS}
      create a topic (1 partition by default; replication factor min(3, live brokers));
      --config takes Kafka's topic config names (retention.ms, min.insync.replicas, ...)
  topics delete NAME ${CLIENT_OPTIONS}
  topics describe NAME ${CLIENT_OPTIONS}
      configs, and per partition: leader, epoch, replicas, ISR, log start/end, high watermark
  topics list ${CLIENT_OPTIONS}

  --bootstrap   any nodes of the cluster (default $DRIFTWOOD_BOOTSTRAP, else 127.0.0.1:9091,9092,9093)
  --token-file  a file holding the cluster's bearer token (default $DRIFTWOOD_TOKEN_FILE)
  --tls-ca      the CA that signed the nodes' certificates: connect over TLS (default
                $DRIFTWOOD_TLS_CA; --tls for TLS with the system's CAs)
  --json        one JSON document on stdout instead of text`;

/** Partitions and replicas one create may ask for (the broker's own bounds). */
const PARTITIONS_MAX = 10_000;
const REPLICATION_FACTOR_MAX = 64;
const CONFIGS_MAX = 64;

export async function runTopics(args: string[], io: CommandIO): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'create': return topicsCreate(rest, io);
    case 'delete': return topicsDelete(rest, io);
    case 'describe': return topicsDescribe(rest, io);
    case 'list': return topicsList(rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(`${TOPICS_USAGE}\n`);
      return;
    default:
      throw new UsageError(`unknown topics command '${sub}' (create, delete, describe, list)`);
  }
}

async function topicsCreate(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: { ...clientFlags, partitions: { type: 'string' }, 'replication-factor': { type: 'string' }, config: { type: 'string', multiple: true } },
  });
  if (values.help) {
    io.stdout(`${TOPICS_USAGE}\n`);
    return;
  }
  const [name] = positionals(given, ['NAME'], 'topics create') as [string];
  const partitions = integerFlag('partitions', values.partitions, 1, 1, PARTITIONS_MAX);
  const replicationFactor = values['replication-factor'] === undefined ? undefined : integerFlag('replication-factor', values['replication-factor'], 1, 1, REPLICATION_FACTOR_MAX);
  const configs = parseConfigs(values.config ?? []);
  const created = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.createTopic({ name, partitions, ...(replicationFactor === undefined ? {} : { replicationFactor }), configs }));
  if (values.json) {
    printJson(io, created);
    return;
  }
  io.stdout(`created topic ${created.name} with ${created.partitions.length} partition${created.partitions.length === 1 ? '' : 's'}, replication factor ${created.partitions[0]?.replicas.length ?? 0}\n`);
}

/** KEY=VALUE pairs (split at the first '='); the broker checks keys and values. */
export function parseConfigs(pairs: readonly string[]): Record<string, string> {
  if (pairs.length > CONFIGS_MAX) throw new UsageError(`at most ${CONFIGS_MAX} --config pairs`);
  const configs: Record<string, string> = {};
  for (const pair of pairs) {
    const at = pair.indexOf('=');
    if (at <= 0) throw new UsageError(`--config is KEY=VALUE, got '${pair}'`);
    const key = pair.slice(0, at);
    if (key in configs) throw new UsageError(`--config ${key} is given twice`);
    configs[key] = pair.slice(at + 1);
  }
  return configs;
}

async function topicsDelete(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${TOPICS_USAGE}\n`);
    return;
  }
  const [name] = positionals(given, ['NAME'], 'topics delete') as [string];
  await withAdmin(await clientTargetFrom(values, io), (admin) => admin.deleteTopic(name));
  if (values.json) {
    printJson(io, { deleted: name });
    return;
  }
  io.stdout(`deleted topic ${name}\n`);
}

async function topicsDescribe(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${TOPICS_USAGE}\n`);
    return;
  }
  const [name] = positionals(given, ['NAME'], 'topics describe') as [string];
  const topic = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.describeTopic(name));
  if (values.json) {
    printJson(io, topic);
    return;
  }
  io.stdout(formatTopic(topic));
}

async function topicsList(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${TOPICS_USAGE}\n`);
    return;
  }
  positionals(given, [], 'topics list');
  const topics = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.listTopics());
  if (values.json) {
    printJson(io, topics);
    return;
  }
  io.stdout(formatTopicList(topics));
}

export function formatTopicList(topics: ReadonlyArray<{ name: string; id: string; partitions: number }>): string {
  const sorted = [...topics].sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
  return table(['NAME', 'PARTITIONS', 'ID'], sorted.map((t) => [t.name, String(t.partitions), t.id]));
}

export function formatTopic(topic: TopicDescription): string {
  const configs = Object.entries(topic.configs).map(([key, value]) => `${key}=${String(value)}`).join(' ');
  const header = fields([
    ['topic', topic.name],
    ['id', topic.id],
    ['partitions', String(topic.partitions.length)],
    ['replication factor', String(topic.partitions[0]?.replicas.length ?? 0)],
    ['configs', configs.length === 0 ? '(defaults)' : configs],
  ]);
  const rows = topic.partitions.map((p) => [
    String(p.partition),
    p.leader === null ? 'none' : String(p.leader),
    String(p.leaderEpoch),
    cell(p.replicas),
    cell(p.isr),
    p.offlineReplicas.length === 0 ? '-' : cell(p.offlineReplicas),
    cell(p.logStartOffset),
    cell(p.logEndOffset),
    cell(p.highWatermark),
  ]);
  return `${header}\n${table(['PARTITION', 'LEADER', 'EPOCH', 'REPLICAS', 'ISR', 'OFFLINE', 'LOG-START', 'LOG-END', 'HIGH-WATERMARK'], rows)}`;
}
