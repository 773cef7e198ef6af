// /metrics in Prometheus text format: the one place prom-client is used. Core modules keep
// plain counters (ReplicaManager.stats, RaftNode.stats) and report timings through the
// DurationSink port; the collectors below read the counters and the metadata image at
// scrape time, so nothing is computed between scrapes.
//
// Label cardinality: per-route series are labelled by route pattern, never the raw URL.
// driftwood_partition_log_bytes has one series per hosted replica, and
// driftwood_consumer_group_lag one per committed (group, topic, partition) on the group's
// coordinator: at 10,000 hosted partitions a scrape carries 10,000 such lines (about 1 MB).
import { collectDefaultMetrics, Counter, Gauge, Histogram, Registry } from 'prom-client';
import type { DurationSink } from '../../storage/observe.js';
import type { HttpApp } from '../http/node-dual-server.js';
import { NO_LEADER } from '../controller/records.js';
import type { PartitionOffsets } from '../replica/replica-manager.js';
import { REPLICA_OFFSETS_PATH } from './node-admin-routes.js';
import type { Broker } from './node-broker.js';
import type { KafkaServerStats } from '../kafka/node-kafka-server.js';

/** Seconds buckets for disk and consensus timings (fsync is ~0.3 ms here, commits a few ms). */
const STORAGE_BUCKETS_SECONDS = [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5];
/** Seconds buckets for HTTP requests (long polls wait up to their maxWaitMs). */
const REQUEST_BUCKETS_SECONDS = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30];
/** How long a scrape waits for another leader's high watermarks (consumer lag) before leaving them out. */
const PEER_OFFSETS_WAIT_MS = 1000;
export const METRICS_PATH = '/metrics';

/** The histograms the node's ports report into, made before the node starts. */
export class NodeMetrics {
  readonly registry = new Registry();
  readonly fsyncDurations: DurationSink;
  readonly commitDurations: DurationSink;
  private readonly requestDurations: Histogram<'method' | 'route' | 'status_code'>;

  constructor() {
    collectDefaultMetrics({ register: this.registry });
    const fsync = new Histogram({ name: 'driftwood_fsync_duration_seconds', help: 'Partition log fsync duration', buckets: STORAGE_BUCKETS_SECONDS, registers: [this.registry] });
    const commit = new Histogram({ name: 'driftwood_raft_commit_duration_seconds', help: 'Metadata proposal time from propose to applied on this node (the Raft leader)', buckets: STORAGE_BUCKETS_SECONDS, registers: [this.registry] });
    this.fsyncDurations = { observeMs: (ms) => { fsync.observe(ms / 1000); } };
    this.commitDurations = { observeMs: (ms) => { commit.observe(ms / 1000); } };
    this.requestDurations = new Histogram({
      name: 'driftwood_request_duration_seconds',
      help: 'HTTP request duration by route pattern',
      labelNames: ['method', 'route', 'status_code'],
      buckets: REQUEST_BUCKETS_SECONDS,
      registers: [this.registry],
    });
  }

  /** Times every request and serves GET /metrics; call before the other routes are added. */
  attach(app: HttpApp, current: () => Broker | null): void {
    app.addHook('onResponse', (request, reply, done) => {
      // The route pattern (/v1/topics/:name), not the URL: one series per route, not per topic.
      const route = request.routeOptions.url ?? 'unmatched';
      this.requestDurations.observe({ method: request.method, route, status_code: String(reply.statusCode) }, reply.elapsedTime / 1000);
      request.log.debug({ method: request.method, route, statusCode: reply.statusCode, durationMs: Math.round(reply.elapsedTime * 1000) / 1000 }, 'request');
      done();
    });
    registerBrokerCollectors(this.registry, current);
    registerKafkaCollectors(this.registry, current);
    app.get(METRICS_PATH, async (_request, reply) => {
      const text = await this.registry.metrics();
      return reply.type(this.registry.contentType).send(text);
    });
  }
}

function counter(registry: Registry, name: string, help: string, read: (broker: Broker) => number, current: () => Broker | null): void {
  new Counter({
    name,
    help,
    registers: [registry],
    collect() {
      const broker = current();
      if (broker === null) return;
      this.reset();
      this.inc(read(broker));
    },
  });
}

function gauge(registry: Registry, name: string, help: string, read: (broker: Broker) => number, current: () => Broker | null): void {
  new Gauge({
    name,
    help,
    registers: [registry],
    collect() {
      const broker = current();
      if (broker !== null) this.set(read(broker));
    },
  });
}

function registerBrokerCollectors(registry: Registry, current: () => Broker | null): void {
  const stats = (broker: Broker): Broker['node']['replicas']['stats'] => broker.node.replicas.stats;
  counter(registry, 'driftwood_produce_requests_total', 'Produce requests to partitions this broker leads, acknowledged', (b) => stats(b).produceRequests, current);
  counter(registry, 'driftwood_produce_bytes_total', 'Record batch bytes produced to partitions this broker leads', (b) => stats(b).producedBytes, current);
  counter(registry, 'driftwood_produce_records_total', 'Records produced to partitions this broker leads', (b) => stats(b).producedRecords, current);
  counter(registry, 'driftwood_fetch_requests_total', 'Consumer fetches answered (follower fetches excluded)', (b) => stats(b).fetchRequests, current);
  counter(registry, 'driftwood_fetch_bytes_total', 'Record batch bytes answered to consumer fetches', (b) => stats(b).fetchedBytes, current);
  counter(registry, 'driftwood_isr_shrinks_total', 'ISR shrinks of partitions this broker leads', (b) => stats(b).isrShrinks, current);
  counter(registry, 'driftwood_isr_expands_total', 'ISR expansions of partitions this broker leads', (b) => stats(b).isrExpands, current);
  counter(registry, 'driftwood_raft_leader_changes_total', 'Metadata quorum leaders this node learned of (the first counts)', (b) => b.node.raft.stats.leaderChanges, current);
  gauge(registry, 'driftwood_raft_term', 'Metadata quorum term on this node', (b) => b.node.raft.status().term, current);
  gauge(registry, 'driftwood_raft_commit_index', 'Metadata log commit index on this node', (b) => b.node.raft.status().commit, current);
  gauge(registry, 'driftwood_controller_active', '1 on the active controller, 0 elsewhere', (b) => (b.node.controller.isActive ? 1 : 0), current);
  gauge(registry, 'driftwood_partitions', 'Partition replicas hosted by this broker', (b) => b.node.replicas.hostedCount, current);
  // As Kafka's OfflineReplicaCount: replicas whose log failed on this broker (disk full, an I/O error).
  gauge(registry, 'driftwood_offline_replicas', 'Partition replicas on this broker whose log failed and is offline', (b) => b.node.replicas.offlinePartitions().length, current);
  counter(registry, 'driftwood_log_failures_total', 'Hosted partition logs that failed (disk full, an I/O error) and went offline', (b) => stats(b).logFailures, current);
  gauge(registry, 'driftwood_leader_partitions', 'Partitions this broker leads', (b) => b.node.replicas.hostedPartitions().filter((p) => p.isLeader).length, current);
  gauge(registry, 'driftwood_under_replicated_partitions', 'Partitions this broker leads whose ISR is smaller than their replica set', (b) => b.node.replicas.hostedPartitions().filter((p) => p.isLeader && p.isr.length < p.replicas.length).length, current);
  // As Kafka's OfflinePartitionsCount: the controller reports it, every other node 0, so a sum over nodes is right.
  gauge(registry, 'driftwood_offline_partitions', 'Partitions without a leader (reported by the active controller, 0 elsewhere)', (b) => (b.node.controller.isActive ? offlinePartitions(b) : 0), current);
  new Gauge({
    name: 'driftwood_partition_log_bytes',
    help: 'Bytes of a hosted partition replica\'s log segments',
    labelNames: ['topic', 'partition'],
    registers: [registry],
    collect() {
      const broker = current();
      if (broker === null) return;
      this.reset();
      for (const p of broker.node.replicas.hostedPartitions()) {
        const topic = broker.node.image.topicById(p.topicId)?.name;
        if (topic !== undefined) this.set({ topic, partition: String(p.partition) }, p.logBytes);
      }
    },
  });
  new Gauge({
    name: 'driftwood_consumer_group_lag',
    help: 'Partition high watermark minus the group\'s committed offset (on the group\'s coordinator)',
    labelNames: ['group', 'topic', 'partition'],
    registers: [registry],
    async collect() {
      const broker = current();
      if (broker === null) return;
      this.reset();
      for (const lag of await consumerLags(broker)) this.set({ group: lag.group, topic: lag.topic, partition: String(lag.partition) }, lag.lag);
    },
  });
}

/** The Kafka listener's counters (none on a node without --kafka-listen). */
function registerKafkaCollectors(registry: Registry, current: () => Broker | null): void {
  const kafka = (): KafkaServerStats | undefined => current()?.kafka?.stats;
  new Gauge({
    name: 'driftwood_kafka_connections',
    help: 'Open connections to the Kafka-protocol listener',
    registers: [registry],
    collect() { this.set(kafka()?.connectionsOpen ?? 0); },
  });
  new Counter({
    name: 'driftwood_kafka_connections_total',
    help: 'Connections to the Kafka-protocol listener, accepted or refused (connectionsMax)',
    labelNames: ['outcome'],
    registers: [registry],
    collect() {
      const stats = kafka();
      this.reset();
      if (stats === undefined) return;
      this.inc({ outcome: 'accepted' }, stats.connectionsAccepted);
      this.inc({ outcome: 'refused' }, stats.connectionsRefused);
    },
  });
  new Counter({
    name: 'driftwood_kafka_connections_closed_total',
    help: 'Kafka-protocol connections closed, by reason (limits, client, shutdown)',
    labelNames: ['reason'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [reason, count] of kafka()?.closesByReason ?? []) this.inc({ reason }, count);
    },
  });
  new Counter({
    name: 'driftwood_kafka_requests_total',
    help: 'Requests read by the Kafka-protocol listener, by api_key',
    labelNames: ['api_key'],
    registers: [registry],
    collect() {
      this.reset();
      for (const [apiKey, count] of kafka()?.requestsByApiKey ?? []) this.inc({ api_key: apiKey }, count);
    },
  });
}

function offlinePartitions(broker: Broker): number {
  const image = broker.node.image;
  let count = 0;
  for (const topic of image.topics()) for (const p of image.partitions(topic.topicId) ?? []) if (p.leader === NO_LEADER) count += 1;
  return count;
}

/** Lag of every offset this node's coordinator holds, against each partition leader's high watermark. */
async function consumerLags(broker: Broker): Promise<Array<{ group: string; topic: string; partition: number; lag: number }>> {
  const committed = broker.node.groups.committedOffsets();
  if (committed.length === 0) return [];
  const image = broker.node.image;
  const ends = new Map<string, number>();
  const topics = [...new Set(committed.map((o) => o.topic))];
  await Promise.all(topics.map(async (name) => {
    const topic = image.topic(name);
    if (topic === undefined) return;
    const leaders = [...new Set((image.partitions(topic.topicId) ?? []).map((p) => p.leader).filter((id) => id !== NO_LEADER))];
    const reported = await Promise.all(leaders.map((leader) => (leader === broker.node.id
      ? Promise.resolve(broker.node.replicas.leaderOffsets(topic.topicId))
      : broker.peers.json<PartitionOffsets[]>(leader, 'GET', `${REPLICA_OFFSETS_PATH}${encodeURIComponent(topic.topicId)}`, undefined, PEER_OFFSETS_WAIT_MS).catch(() => []))));
    for (const o of reported.flat()) ends.set(`${name}/${o.partition}`, o.highWatermark);
  }));
  return committed.flatMap((o) => {
    const end = ends.get(`${o.topic}/${o.partition}`);
    return end === undefined ? [] : [{ ...o, lag: Math.max(0, end - o.offset) }];
  });
}
