// `driftwood groups list|describe|reset-offsets|delete`, in the spirit of kafka-consumer-groups.
import { parseArgs } from 'node:util';
import type { GroupDescription, GroupListing, ResetGroupOffsets, ResetGroupOffsetsResult } from '../client/admin.js';
import { withAdmin } from './admin.js';
import { cell, clientFlags, fields, integerFlag, positionals, printJson, table, UsageError, type CommandIO } from './io.js';
import { clientTargetFrom } from './security-flags.js';

const CLIENT_OPTIONS = '[--bootstrap HOST:PORT,...] [--token-file FILE] [--tls-ca FILE] [--json]';

export const GROUPS_USAGE = `usage: driftwood groups <list|describe|reset-offsets|delete> [options]

  groups list ${CLIENT_OPTIONS}
      every group with committed offsets or members: state, members, coordinator
  groups describe GROUP ${CLIENT_OPTIONS}
      members and their assignment; per partition: committed offset, log end, lag, owner
  groups reset-offsets GROUP --topic TOPIC (--to-earliest | --to-latest | --to-offset N | --to-datetime ISO)
                       [--partitions 0,1,...] [--dry-run] ${CLIENT_OPTIONS}
      move the group's committed offsets (every partition of the topic unless --partitions);
      the group must have no members; --dry-run shows the offsets without writing them;
      --to-datetime is the first offset at or after that time (ISO 8601; local time unless
      it names a zone, as Date.parse reads it)
  groups delete GROUP ${CLIENT_OPTIONS}
      remove a group without members and its committed offsets

  --bootstrap   any nodes of the cluster (default $DRIFTWOOD_BOOTSTRAP, else 127.0.0.1:9091,9092,9093)
  --token-file  a file holding the cluster's bearer token (default $DRIFTWOOD_TOKEN_FILE)
  --tls-ca      the CA that signed the nodes' certificates: connect over TLS (default
                $DRIFTWOOD_TLS_CA; --tls for TLS with the system's CAs)
  --json        one JSON document on stdout instead of text`;

/** Partitions one --partitions list may name. */
const PARTITIONS_LISTED_MAX = 10_000;

export async function runGroups(args: string[], io: CommandIO): Promise<void> {
  const [sub, ...rest] = args;
  switch (sub) {
    case 'list': return groupsList(rest, io);
    case 'describe': return groupsDescribe(rest, io);
    case 'reset-offsets': return groupsResetOffsets(rest, io);
    case 'delete': return groupsDelete(rest, io);
    case undefined:
    case 'help':
    case '--help':
    case '-h':
      io.stdout(`${GROUPS_USAGE}\n`);
      return;
    default:
      throw new UsageError(`unknown groups command '${sub}' (list, describe, reset-offsets, delete)`);
  }
}

async function groupsList(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${GROUPS_USAGE}\n`);
    return;
  }
  positionals(given, [], 'groups list');
  const groups = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.listGroups());
  if (values.json) {
    printJson(io, groups);
    return;
  }
  io.stdout(formatGroupList(groups));
}

async function groupsDescribe(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${GROUPS_USAGE}\n`);
    return;
  }
  const [group] = positionals(given, ['GROUP'], 'groups describe') as [string];
  const description = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.describeGroup(group));
  if (values.json) {
    printJson(io, description);
    return;
  }
  io.stdout(formatGroup(description));
}

async function groupsResetOffsets(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({
    args,
    strict: true,
    allowPositionals: true,
    options: {
      ...clientFlags,
      topic: { type: 'string' },
      partitions: { type: 'string' },
      'to-earliest': { type: 'boolean', default: false },
      'to-latest': { type: 'boolean', default: false },
      'to-offset': { type: 'string' },
      'to-datetime': { type: 'string' },
      'dry-run': { type: 'boolean', default: false },
    },
  });
  if (values.help) {
    io.stdout(`${GROUPS_USAGE}\n`);
    return;
  }
  const [group] = positionals(given, ['GROUP'], 'groups reset-offsets') as [string];
  const reset = resetFromFlags(values);
  const result = await withAdmin(await clientTargetFrom(values, io), (admin) => admin.resetGroupOffsets(group, reset));
  if (values.json) {
    printJson(io, result);
    return;
  }
  io.stdout(formatReset(result));
}

interface ResetFlags {
  readonly topic?: string | undefined;
  readonly partitions?: string | undefined;
  readonly 'to-earliest': boolean;
  readonly 'to-latest': boolean;
  readonly 'to-offset'?: string | undefined;
  readonly 'to-datetime'?: string | undefined;
  readonly 'dry-run': boolean;
}

/** The reset request the flags describe; exactly one --to-* and a --topic are required. */
export function resetFromFlags(values: ResetFlags): ResetGroupOffsets {
  if (values.topic === undefined || values.topic.length === 0) throw new UsageError('groups reset-offsets needs --topic TOPIC');
  const targets = [values['to-earliest'], values['to-latest'], values['to-offset'] !== undefined, values['to-datetime'] !== undefined].filter(Boolean).length;
  if (targets !== 1) throw new UsageError('groups reset-offsets needs exactly one of --to-earliest, --to-latest, --to-offset N, --to-datetime ISO');
  const partitions = values.partitions === undefined ? undefined : parsePartitionList(values.partitions);
  const base = { topic: values.topic, dryRun: values['dry-run'], ...(partitions === undefined ? {} : { partitions }) };
  if (values['to-earliest']) return { ...base, to: 'earliest' };
  if (values['to-latest']) return { ...base, to: 'latest' };
  if (values['to-offset'] !== undefined) return { ...base, to: 'offset', value: integerFlag('to-offset', values['to-offset'], 0, 0) };
  const text = values['to-datetime'] ?? '';
  // Date.parse also takes forms like "March 7"; a reset wants an unambiguous ISO 8601 date.
  const ms = /^\d{4}-\d{2}-\d{2}/.test(text) ? Date.parse(text) : Number.NaN;
  if (!Number.isFinite(ms) || ms < 0) throw new UsageError(`--to-datetime is an ISO 8601 date-time (2024-05-01T12:00:00Z), got '${text}'`);
  return { ...base, to: 'timestamp', value: ms };
}

/** "0,1,4" as sorted distinct partition numbers. */
export function parsePartitionList(text: string): number[] {
  const parts = text.split(',').map((p) => p.trim());
  if (parts.length > PARTITIONS_LISTED_MAX) throw new UsageError(`--partitions names at most ${PARTITIONS_LISTED_MAX} partitions`);
  const numbers = parts.map((p) => {
    const n = /^[0-9]+$/.test(p) ? Number(p) : Number.NaN;
    if (!Number.isSafeInteger(n)) throw new UsageError(`--partitions is a list like 0,1,2, got '${text}'`);
    return n;
  });
  return [...new Set(numbers)].sort((a, b) => a - b);
}

async function groupsDelete(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${GROUPS_USAGE}\n`);
    return;
  }
  const [group] = positionals(given, ['GROUP'], 'groups delete') as [string];
  await withAdmin(await clientTargetFrom(values, io), (admin) => admin.deleteGroup(group));
  if (values.json) {
    printJson(io, { deleted: group });
    return;
  }
  io.stdout(`deleted group ${group}\n`);
}

export function formatGroupList(groups: readonly GroupListing[]): string {
  if (groups.length === 0) return 'no groups\n';
  return table(['GROUP', 'STATE', 'MEMBERS', 'COORDINATOR'], groups.map((g) => [g.group, g.state, String(g.members), String(g.coordinatorId)]));
}

/** Kafka's describe: one row per partition the group commits or is assigned, with its owner. */
export function formatGroup(group: GroupDescription): string {
  const header = fields([
    ['group', group.group],
    ['state', group.state],
    ['epoch', String(group.groupEpoch)],
    ['assignor', group.assignor],
    ['members', String(group.members.length)],
  ]);
  const memberRows = group.members.map((m) => [m.memberId, m.clientId, m.host, String(m.memberEpoch), m.assignment.map((a) => `${a.topic}:${a.partitions.join(',')}`).join(' ') || '-']);
  const owners = new Map<string, string>();
  for (const member of group.members) for (const a of member.assignment) for (const p of a.partitions) owners.set(`${a.topic}\0${p}`, member.memberId);
  const rows = new Map<string, string[]>();
  for (const o of group.offsets) rows.set(`${o.topic}\0${o.partition}`, [o.topic, String(o.partition), String(o.committed), cell(o.logEndOffset), cell(o.lag), owners.get(`${o.topic}\0${o.partition}`) ?? '-']);
  for (const [key, owner] of owners) {
    if (rows.has(key)) continue;
    const [topic = '', partition = ''] = key.split('\0');
    rows.set(key, [topic, partition, '-', '-', '-', owner]);
  }
  const sorted = [...rows.values()].sort((a, b) => ((a[0] ?? '') < (b[0] ?? '') ? -1 : (a[0] ?? '') > (b[0] ?? '') ? 1 : Number(a[1]) - Number(b[1])));
  const members = memberRows.length === 0 ? '' : `\n${table(['MEMBER-ID', 'CLIENT-ID', 'HOST', 'EPOCH', 'ASSIGNMENT'], memberRows)}`;
  const offsets = sorted.length === 0 ? '\nno committed offsets\n' : `\n${table(['TOPIC', 'PARTITION', 'COMMITTED', 'LOG-END', 'LAG', 'MEMBER-ID'], sorted)}`;
  return `${header}${members}${offsets}`;
}

export function formatReset(result: ResetGroupOffsetsResult): string {
  const rows = result.offsets.map((o) => [o.topic, String(o.partition), String(o.offset)]);
  const note = result.dryRun ? `dry run: ${result.group}'s offsets would become (nothing written)\n` : `reset ${result.group}'s offsets to\n`;
  return `${note}${table(['TOPIC', 'PARTITION', 'NEW-OFFSET'], rows)}`;
}
