// Admin calls: topics, the cluster, consumer groups, preferred-leader elections. Any node
// answers them (changes are forwarded to the controller or the group's coordinator by the
// node); the client moves to another node only when one cannot be reached, and retries
// reads with backoff while the cluster says to retry.
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { Connections } from './connections.js';
import { Metadata, notSent, parseBrokers, parseTopic, type BrokerMetadata, type PartitionMetadata } from './metadata.js';
import { checkedInteger, resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { isRetriable, monotonicMs, retryUntil, Timers } from './retry.js';

export interface AdminOptions extends ClientOptions {
  /** How long one call may take, retries included (default 60000). */
  readonly apiTimeoutMs?: number;
}

export interface NewTopic {
  readonly name: string;
  /** Default 1. */
  readonly partitions?: number;
  /** Default min(3, alive brokers). */
  readonly replicationFactor?: number;
  /** Kafka's topic config names: retention.ms, min.insync.replicas, ... */
  readonly configs?: Readonly<Record<string, string | number | boolean>>;
}

export interface PartitionDescription extends PartitionMetadata {
  readonly logStartOffset: number | null;
  readonly logEndOffset: number | null;
  readonly highWatermark: number | null;
}

export interface TopicDescription {
  readonly name: string;
  readonly id: string;
  readonly configs: Readonly<Record<string, unknown>>;
  readonly partitions: readonly PartitionDescription[];
}

/** One replica of a partition being reassigned: its role and how far it has copied (null: unknown now). */
export interface ReplicaProgressView {
  readonly broker: number;
  readonly role: 'leader' | 'adding' | 'removing' | 'staying';
  readonly inSync: boolean;
  readonly logEndOffset: number | null;
  readonly lag: number | null;
  readonly bytesCopied: number | null;
}

export interface ReassignmentView {
  readonly topic: string;
  readonly partition: number;
  readonly replicas: readonly number[];
  readonly target: readonly number[];
  readonly adding: readonly number[];
  readonly removing: readonly number[];
  readonly isr: readonly number[];
  readonly leader: number | null;
  readonly leaderLogEndOffset: number | null;
  readonly leaderLogBytes: number | null;
  readonly progress: readonly ReplicaProgressView[];
}

export interface ReassignmentListing {
  readonly partitions: readonly ReassignmentView[];
}

export interface PlannedMoveView {
  readonly topic: string;
  readonly partition: number;
  readonly from: readonly number[];
  readonly to: readonly number[];
}

export interface ClusterDescription {
  readonly clusterId: string | null;
  /** The active controller's broker id (0 while there is none). */
  readonly controller: number;
  readonly brokers: readonly BrokerMetadata[];
}

export interface GroupListing {
  readonly group: string;
  readonly state: string;
  readonly members: number;
  readonly coordinatorId: number;
}

export interface GroupDescription {
  readonly group: string;
  readonly state: 'empty' | 'reconciling' | 'stable';
  readonly groupEpoch: number;
  readonly assignor: string;
  readonly members: ReadonlyArray<{ memberId: string; clientId: string; host: string; memberEpoch: number; assignment: ReadonlyArray<{ topic: string; partitions: number[] }> }>;
  readonly offsets: ReadonlyArray<{ topic: string; partition: number; committed: number; logEndOffset: number; lag: number }>;
}

export interface ResetGroupOffsets {
  readonly topic: string;
  /** Default: every partition of the topic. */
  readonly partitions?: readonly number[];
  readonly to: 'earliest' | 'latest' | 'offset' | 'timestamp';
  /** The offset (to 'offset') or the timestamp in ms (to 'timestamp'). */
  readonly value?: number;
  /** Answer what would change without changing it. */
  readonly dryRun?: boolean;
}

export interface ResetGroupOffsetsResult {
  readonly group: string;
  readonly dryRun: boolean;
  readonly offsets: ReadonlyArray<{ topic: string; partition: number; offset: number }>;
}

export class Admin {
  private readonly client: ResolvedClientOptions;
  private readonly apiTimeoutMs: number;
  private readonly timers = new Timers();
  private readonly connections: Connections;
  private readonly metadata: Metadata;
  private closedValue = false;

  constructor(options: AdminOptions) {
    this.client = resolveClientOptions(options, 'admin');
    this.apiTimeoutMs = checkedInteger('apiTimeoutMs', options.apiTimeoutMs, 60_000, 1, 3_600_000);
    this.connections = new Connections(this.client.requestsPerBrokerMax, this.client.security);
    this.metadata = new Metadata(this.connections, this.client, this.timers);
  }

  /** Creates a topic; resolves with it as the answering node has applied it. TOPIC_ALREADY_EXISTS, INVALID_* otherwise. */
  async createTopic(topic: NewTopic): Promise<TopicDescription> {
    const body = {
      name: topic.name,
      ...(topic.partitions === undefined ? {} : { partitions: topic.partitions }),
      ...(topic.replicationFactor === undefined ? {} : { replicationFactor: topic.replicationFactor }),
      ...(topic.configs === undefined ? {} : { configs: topic.configs }),
    };
    return toTopicDescription(await this.change('POST', '/v1/topics', body), topic.name);
  }

  async deleteTopic(name: string): Promise<void> {
    await this.change('DELETE', `/v1/topics/${encodeURIComponent(name)}`);
  }

  /** A topic's configs and partitions (leader, epoch, replicas, ISR, and offsets from each leader, null when it did not answer). */
  async describeTopic(name: string): Promise<TopicDescription> {
    return toTopicDescription(await this.read(`/v1/topics/${encodeURIComponent(name)}`), name);
  }

  async listTopics(): Promise<Array<{ name: string; id: string; partitions: number }>> {
    return this.read<Array<{ name: string; id: string; partitions: number }>>('/v1/topics');
  }

  async describeCluster(): Promise<ClusterDescription> {
    const cluster = await this.read<{ clusterId?: unknown; controller?: unknown }>('/v1/cluster');
    const brokers = parseBrokers(await this.read('/v1/brokers'));
    return { clusterId: typeof cluster.clusterId === 'string' ? cluster.clusterId : null, controller: typeof cluster.controller === 'number' ? cluster.controller : 0, brokers };
  }

  async listGroups(): Promise<GroupListing[]> {
    return this.read<GroupListing[]>('/v1/groups');
  }

  /** Members, assignments, committed offsets and lag; GROUP_ID_NOT_FOUND for a group that does not exist. */
  async describeGroup(group: string): Promise<GroupDescription> {
    return this.read<GroupDescription>(`/v1/groups/${encodeURIComponent(group)}`);
  }

  /** Moves a group's committed offsets (NON_EMPTY_GROUP while it has members). */
  async resetGroupOffsets(group: string, reset: ResetGroupOffsets): Promise<ResetGroupOffsetsResult> {
    const body = {
      topic: reset.topic,
      to: reset.to,
      ...(reset.partitions === undefined ? {} : { partitions: reset.partitions }),
      ...(reset.value === undefined ? {} : { value: reset.value }),
      ...(reset.dryRun === undefined ? {} : { dryRun: reset.dryRun }),
    };
    return this.change<ResetGroupOffsetsResult>('POST', `/v1/groups/${encodeURIComponent(group)}/offsets/reset`, body);
  }

  /** Deletes a group and its committed offsets (NON_EMPTY_GROUP while it has members). */
  async deleteGroup(group: string): Promise<void> {
    await this.change('DELETE', `/v1/groups/${encodeURIComponent(group)}`);
  }

  /** Moves leadership back to preferred replicas where they are in the ISR; resolves with how many moved. */
  async electPreferredLeaders(): Promise<{ elected: number }> {
    return this.change<{ elected: number }>('POST', '/v1/elections/preferred', {});
  }

  /** Starts, replaces (a new replica list) or cancels (null) partition reassignments; all or none. */
  async alterReassignments(partitions: ReadonlyArray<{ topic: string; partition: number; replicas: readonly number[] | null }>, options: { throttleBytesPerSec?: number } = {}): Promise<ReassignmentListing> {
    return this.change<ReassignmentListing>('POST', '/v1/reassignments', { partitions, ...options });
  }

  /** The partitions being reassigned, with how far each replica has copied, and the throttle. */
  async listReassignments(): Promise<ReassignmentListing & { throttleBytesPerSec: number }> {
    return this.read('/v1/reassignments');
  }

  /** The plan that evens replicas and preferred leaders across brokers; started unless dryRun. */
  async rebalance(options: { dryRun: boolean; throttleBytesPerSec?: number }): Promise<{ dryRun: boolean; moves: PlannedMoveView[] }> {
    return this.change('POST', '/v1/cluster/rebalance', options);
  }

  /** Moves every replica off a broker and stops placing new ones there; a dry run only plans. */
  async decommissionBroker(brokerId: number, options: { dryRun: boolean; throttleBytesPerSec?: number }): Promise<{ broker: number; dryRun: boolean; moves: PlannedMoveView[]; replicasLeft: number }> {
    return this.change('POST', `/v1/brokers/${brokerId}/decommission`, options);
  }

  async close(): Promise<void> {
    if (this.closedValue) return;
    this.closedValue = true;
    this.timers.close();
    await this.connections.close();
  }

  /** A read, retried with backoff while retriable, for up to requestTimeoutMs in all. */
  private read<T>(path: string): Promise<T> {
    this.checkOpen();
    const call = (): Promise<T> => this.metadata.anyBroker((address) => this.connections.json<T>(address, { method: 'GET', path, timeoutMs: this.client.requestTimeoutMs }));
    return retryUntil(call, readRetriable, monotonicMs() + this.apiTimeoutMs, this.client, this.timers);
  }

  /**
   * A change, retried only when it certainly did not happen: no node could be reached before
   * it was sent, or the node answered that it cannot act yet (no controller, no coordinator).
   * A change whose answer was lost is not repeated: REQUEST_TIMED_OUT says it may have happened.
   */
  private change<T>(method: 'POST' | 'DELETE', path: string, body?: unknown): Promise<T> {
    this.checkOpen();
    const call = (): Promise<T> => this.metadata.anyBroker((address) => this.connections.json<T>(address, { method, path, ...(body === undefined ? {} : { body }), timeoutMs: this.client.requestTimeoutMs }), notSent);
    return retryUntil(call, notApplied, monotonicMs() + this.apiTimeoutMs, this.client, this.timers);
  }

  private checkOpen(): void {
    if (this.closedValue) throw new DriftwoodError('CLIENT_CLOSED', 'the admin client is closed');
  }
}

/** A read fails at once for a topic that does not exist, as Kafka's describeTopics does; other retriable answers are retried. */
function readRetriable(error: unknown): boolean {
  return isRetriable(error) && !isDriftwoodError(error, 'UNKNOWN_TOPIC_OR_PARTITION');
}

function notApplied(error: unknown): boolean {
  if (!isDriftwoodError(error)) return false;
  if (notSent(error)) return true;
  return error.code === 'NOT_CONTROLLER' || error.code === 'COORDINATOR_NOT_AVAILABLE' || error.code === 'COORDINATOR_LOAD_IN_PROGRESS' || error.code === 'NOT_COORDINATOR';
}

function toTopicDescription(answer: unknown, name: string): TopicDescription {
  const metadata = parseTopic(answer, name);
  const raw = answer as { configs?: unknown; partitions: Array<{ logStartOffset?: unknown; logEndOffset?: unknown; highWatermark?: unknown }> };
  const offset = (value: unknown): number | null => (typeof value === 'number' ? value : null);
  return {
    name: metadata.name,
    id: metadata.id,
    configs: typeof raw.configs === 'object' && raw.configs !== null ? (raw.configs as Record<string, unknown>) : {},
    partitions: metadata.partitions.map((p, i) => {
      const extra = raw.partitions[i] ?? {};
      return { ...p, logStartOffset: offset(extra.logStartOffset), logEndOffset: offset(extra.logEndOffset), highWatermark: offset(extra.highWatermark) };
    }),
  };
}
