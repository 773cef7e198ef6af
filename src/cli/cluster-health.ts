// `driftwood cluster health`: whether every partition has a leader and its whole replica set
// in sync, as `kafka-topics --describe --under-replicated-partitions` and
// `--unavailable-partitions` together. Exit 0 only when healthy, 1 otherwise (the partitions
// are listed), 2 for bad usage. Reads the metadata any node holds; no offsets are needed.
import { parseArgs } from 'node:util';
import type { Admin, ClusterDescription, TopicDescription } from '../client/admin.js';
import { withAdmin } from './admin.js';
import { clientFlags, fields, positionals, printJson, ReportedFailure, table, type CommandIO } from './io.js';
import { clientTargetFrom } from './security-flags.js';

export const CLUSTER_HEALTH_USAGE = `usage: driftwood cluster health [--bootstrap HOST:PORT,...] [--json]
      exit 0 when every partition has a leader and a full ISR; otherwise lists the
      leaderless and under-replicated partitions and exits 1

  --bootstrap   any nodes of the cluster (default $DRIFTWOOD_BOOTSTRAP, else 127.0.0.1:9091,9092,9093)
  --json        one JSON document on stdout instead of text`;

/** Topics described at once; a cluster with many topics is read in rounds of this many. */
const DESCRIBES_IN_FLIGHT_MAX = 8;

export interface UnhealthyPartition {
  readonly topic: string;
  readonly partition: number;
  readonly leader: number | null;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** Replicas missing from the ISR. */
  readonly outOfSync: readonly number[];
  readonly problem: 'leaderless' | 'under-replicated';
}

export interface ClusterHealth {
  readonly healthy: boolean;
  readonly controller: number;
  readonly brokers: { readonly alive: number; readonly fenced: readonly number[] };
  readonly topics: number;
  readonly partitions: number;
  readonly unhealthy: readonly UnhealthyPartition[];
}

export async function runClusterHealth(args: string[], io: CommandIO): Promise<void> {
  const { values, positionals: given } = parseArgs({ args, strict: true, allowPositionals: true, options: clientFlags });
  if (values.help) {
    io.stdout(`${CLUSTER_HEALTH_USAGE}\n`);
    return;
  }
  positionals(given, [], 'cluster health');
  const health = await withAdmin(await clientTargetFrom(values, io), readHealth);
  if (values.json) printJson(io, health);
  else io.stdout(formatHealth(health));
  if (!health.healthy) throw new ReportedFailure('the cluster is not healthy');
}

async function readHealth(admin: Admin): Promise<ClusterHealth> {
  const cluster = await admin.describeCluster();
  const names = (await admin.listTopics()).map((t) => t.name).sort();
  const topics: TopicDescription[] = [];
  for (let i = 0; i < names.length; i += DESCRIBES_IN_FLIGHT_MAX) {
    topics.push(...await Promise.all(names.slice(i, i + DESCRIBES_IN_FLIGHT_MAX).map((name) => admin.describeTopic(name))));
  }
  return assessHealth(cluster, topics);
}

/** The verdict from the cluster's metadata: pure, so it is tested on its own. */
export function assessHealth(cluster: ClusterDescription, topics: readonly TopicDescription[]): ClusterHealth {
  const unhealthy: UnhealthyPartition[] = [];
  let partitions = 0;
  for (const topic of topics) {
    for (const p of topic.partitions) {
      partitions += 1;
      const outOfSync = p.replicas.filter((id) => !p.isr.includes(id));
      if (p.leader !== null && outOfSync.length === 0) continue;
      unhealthy.push({ topic: topic.name, partition: p.partition, leader: p.leader, replicas: p.replicas, isr: p.isr, outOfSync, problem: p.leader === null ? 'leaderless' : 'under-replicated' });
    }
  }
  const fenced = cluster.brokers.filter((b) => b.state !== 'alive').map((b) => b.id).sort((a, b) => a - b);
  return {
    healthy: unhealthy.length === 0 && cluster.controller > 0,
    controller: cluster.controller,
    brokers: { alive: cluster.brokers.length - fenced.length, fenced },
    topics: topics.length,
    partitions,
    unhealthy,
  };
}

export function formatHealth(health: ClusterHealth): string {
  const leaderless = health.unhealthy.filter((p) => p.problem === 'leaderless').length;
  const header = fields([
    ['status', health.healthy ? 'healthy' : 'NOT healthy'],
    ['controller', health.controller > 0 ? String(health.controller) : 'none (election in progress)'],
    ['brokers', `${health.brokers.alive} alive${health.brokers.fenced.length === 0 ? '' : `, fenced: ${health.brokers.fenced.join(',')}`}`],
    ['partitions', `${health.partitions} in ${health.topics} topics: ${leaderless} leaderless, ${health.unhealthy.length - leaderless} under-replicated`],
  ]);
  if (health.unhealthy.length === 0) return header;
  const rows = health.unhealthy.map((p) => [p.topic, String(p.partition), p.leader === null ? 'none' : String(p.leader), p.replicas.join(','), p.isr.join(','), p.outOfSync.join(',') || '-', p.problem]);
  return `${header}\n${table(['TOPIC', 'PARTITION', 'LEADER', 'REPLICAS', 'ISR', 'OUT-OF-SYNC', 'PROBLEM'], rows)}`;
}
