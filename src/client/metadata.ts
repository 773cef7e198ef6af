// The client's view of the cluster: broker addresses (GET /v1/brokers) and, per topic, each
// partition's leader and leader epoch (GET /v1/topics/:name), asked of any node that answers.
// Entries are cached until an answer says they are stale (NOT_LEADER_OR_FOLLOWER and friends,
// a broker that cannot be reached) or they reach metadataMaxAgeMs; one refresh per topic runs
// at a time and every caller waiting for that topic shares it.
import assert from 'node:assert/strict';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import type { Connections } from './connections.js';
import type { ResolvedClientOptions } from './options.js';
import { isRetriable, monotonicMs, retryUntil, type Timers } from './retry.js';

export interface PartitionMetadata {
  readonly partition: number;
  /** The leading broker's id, or null while the partition has none. */
  readonly leader: number | null;
  readonly leaderEpoch: number;
  readonly replicas: readonly number[];
  readonly isr: readonly number[];
  /** Replicas whose log failed on their broker (Kafka's offline replicas); empty from a node that does not say. */
  readonly offlineReplicas: readonly number[];
}

export interface TopicMetadata {
  readonly name: string;
  readonly id: string;
  readonly partitions: readonly PartitionMetadata[];
}

export interface BrokerMetadata {
  readonly id: number;
  readonly address: string;
  readonly state: 'alive' | 'fenced';
  /** Being emptied for removal (driftwood brokers decommission): takes no new replicas. */
  readonly decommissioned: boolean;
}

export interface Leader {
  readonly brokerId: number;
  readonly address: string;
  readonly leaderEpoch: number;
}

interface CachedTopic {
  readonly metadata: TopicMetadata;
  readonly fetchedMs: number;
  stale: boolean;
}

/** Topics one client caches at most; the least recently fetched go first. */
const TOPICS_CACHED_MAX = 10_000;
/** Brokers one cluster lists at most (a bound on an answer we keep). */
const BROKERS_MAX = 10_000;

export class Metadata {
  private readonly topics = new Map<string, CachedTopic>();
  private readonly refreshes = new Map<string, Promise<TopicMetadata>>();
  private readonly brokers = new Map<number, BrokerMetadata>();
  private brokersFetchedMs = -Infinity;
  /** The address that answered last: asked first next time. */
  private preferred: string;

  constructor(
    private readonly connections: Connections,
    private readonly options: ResolvedClientOptions,
    private readonly timers: Timers,
  ) {
    assert(options.bootstrap.length > 0);
    this.preferred = options.bootstrap[0] as string;
  }

  /** The cached topic if fresh; undefined when it must be fetched first. */
  cached(name: string): TopicMetadata | undefined {
    const entry = this.topics.get(name);
    if (entry === undefined || entry.stale || monotonicMs() - entry.fetchedMs > this.options.metadataMaxAgeMs) return undefined;
    return entry.metadata;
  }

  /** The cached topic even if stale (its partition count still holds); undefined if never fetched. */
  known(name: string): TopicMetadata | undefined {
    return this.topics.get(name)?.metadata;
  }

  /** The topic, fetched once now unless the cache is fresh; rejects with the broker's error. */
  async topic(name: string): Promise<TopicMetadata> {
    return this.cached(name) ?? this.refresh(name);
  }

  /**
   * The topic, retrying retriable failures (UNKNOWN_TOPIC_OR_PARTITION included: the topic
   * may be being created) with backoff until `deadlineMs`; then the last error.
   */
  topicWithin(name: string, deadlineMs: number): Promise<TopicMetadata> {
    return retryUntil(() => this.topic(name), isRetriable, deadlineMs, this.options, this.timers);
  }

  /** Marks the topic stale: the next lookup fetches it again. */
  invalidate(name: string): void {
    const entry = this.topics.get(name);
    if (entry !== undefined) entry.stale = true;
  }

  /** The cached leader of a partition with its address; undefined when unknown or leaderless. */
  leader(topic: string, partition: number): Leader | undefined {
    const entry = this.topics.get(topic);
    const state = entry?.metadata.partitions[partition];
    if (entry === undefined || entry.stale || state === undefined || state.leader === null) return undefined;
    if (monotonicMs() - entry.fetchedMs > this.options.metadataMaxAgeMs) return undefined;
    const broker = this.brokers.get(state.leader);
    if (broker === undefined) return undefined;
    return { brokerId: state.leader, address: broker.address, leaderEpoch: state.leaderEpoch };
  }

  /** The leader of a partition, fetching metadata when the cache lacks it (one attempt). */
  async currentLeader(topic: string, partition: number): Promise<Leader> {
    const cachedLeader = this.leader(topic, partition);
    if (cachedLeader !== undefined) return cachedLeader;
    const metadata = await this.refresh(topic);
    const state = metadata.partitions[partition];
    if (state === undefined) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `${topic} has ${metadata.partitions.length} partitions, not ${partition + 1}`);
    const leader = this.leader(topic, partition);
    if (leader === undefined) throw new DriftwoodError('NOT_LEADER_OR_FOLLOWER', `${topic}-${partition} has no leader now`, { leader: state.leader });
    return leader;
  }

  /** The brokers as last fetched (fetching them first if never). */
  async brokerList(): Promise<BrokerMetadata[]> {
    if (this.brokers.size === 0) await this.refreshBrokers();
    return [...this.brokers.values()];
  }

  /**
   * Runs `call` against a node: the one that answered last first, then the rest of the known
   * and bootstrap addresses, moving on only when a node cannot be reached or does not answer.
   * A node's error answer (a DriftwoodError of its own) is returned as is; `moveOn` says
   * which failures try the next node (a change must not be sent twice when it may have landed).
   */
  async anyBroker<T>(call: (address: string) => Promise<T>, moveOn: (error: unknown) => boolean = unreachable): Promise<T> {
    const addresses = this.addresses();
    let lastError: unknown = new DriftwoodError('NETWORK_EXCEPTION', 'no node address to try');
    for (const address of addresses) {
      try {
        const result = await call(address);
        this.preferred = address;
        return result;
      } catch (error) {
        lastError = error;
        if (!moveOn(error)) throw error;
      }
    }
    throw lastError;
  }

  /** Fetches the topic now (shared with a refresh already running for it). */
  refresh(name: string): Promise<TopicMetadata> {
    const running = this.refreshes.get(name);
    if (running !== undefined) return running;
    const refresh = this.fetchTopic(name).finally(() => this.refreshes.delete(name));
    this.refreshes.set(name, refresh);
    return refresh;
  }

  private async fetchTopic(name: string): Promise<TopicMetadata> {
    const path = `/v1/topics/${encodeURIComponent(name)}`;
    const answer = await this.anyBroker((address) => this.connections.json<unknown>(address, { method: 'GET', path, timeoutMs: this.options.requestTimeoutMs }), unanswered);
    const metadata = parseTopic(answer, name);
    const missing = metadata.partitions.some((p) => p.leader !== null && !this.brokers.has(p.leader));
    if (missing || monotonicMs() - this.brokersFetchedMs > this.options.metadataMaxAgeMs) await this.refreshBrokers();
    if (this.topics.size >= TOPICS_CACHED_MAX && !this.topics.has(name)) {
      const oldest = this.topics.keys().next().value;
      if (oldest !== undefined) this.topics.delete(oldest);
    }
    this.topics.delete(name);
    this.topics.set(name, { metadata, fetchedMs: monotonicMs(), stale: false });
    return metadata;
  }

  private async refreshBrokers(): Promise<void> {
    const answer = await this.anyBroker((address) => this.connections.json<unknown>(address, { method: 'GET', path: '/v1/brokers', timeoutMs: this.options.requestTimeoutMs }), unanswered);
    const brokers = parseBrokers(answer);
    this.brokers.clear();
    for (const broker of brokers) this.brokers.set(broker.id, broker);
    this.brokersFetchedMs = monotonicMs();
  }

  /** Every address worth trying, the last one that answered first, alive brokers before fenced ones. */
  private addresses(): string[] {
    const alive = [...this.brokers.values()].filter((b) => b.state === 'alive').map((b) => b.address);
    const fenced = [...this.brokers.values()].filter((b) => b.state !== 'alive').map((b) => b.address);
    return [...new Set([this.preferred, ...alive, ...this.options.bootstrap, ...fenced])];
  }
}

/** The node could not be reached or did not answer: another may. */
function unreachable(error: unknown): boolean {
  return isDriftwoodError(error) && (error.code === 'NETWORK_EXCEPTION' || error.code === 'REQUEST_TIMED_OUT');
}

/**
 * A read another node may answer: this one cannot be reached, or it is starting (a node
 * answers NOT_CONTROLLER to everything until it is up, as after a restart), which would
 * otherwise keep a client whose last good node restarted from any metadata meanwhile.
 */
function unanswered(error: unknown): boolean {
  return unreachable(error) || isDriftwoodError(error, 'NOT_CONTROLLER');
}

/** The request certainly never reached the node: sending it elsewhere cannot make it happen twice. */
export function notSent(error: unknown): boolean {
  return isDriftwoodError(error) && error.code === 'NETWORK_EXCEPTION' && error.hints.sent === false;
}

function malformed(what: string): DriftwoodError {
  return new DriftwoodError('CORRUPT_MESSAGE', `the broker's ${what} answer is not what the client expects`);
}

function isIntegerArray(value: unknown): value is number[] {
  return Array.isArray(value) && value.every((v) => Number.isInteger(v));
}

export function parseTopic(answer: unknown, name: string): TopicMetadata {
  const topic = answer as { name?: unknown; id?: unknown; partitions?: unknown } | null;
  if (topic === null || typeof topic !== 'object' || topic.name !== name || !Array.isArray(topic.partitions)) throw malformed(`topic ${name}`);
  const partitions = (topic.partitions as unknown[]).map((raw, index): PartitionMetadata => {
    const p = raw as { partition?: unknown; leader?: unknown; leaderEpoch?: unknown; replicas?: unknown; isr?: unknown; offlineReplicas?: unknown } | null;
    if (p === null || typeof p !== 'object' || p.partition !== index || !Number.isInteger(p.leaderEpoch) || !isIntegerArray(p.replicas) || !isIntegerArray(p.isr)) {
      throw malformed(`topic ${name} partition ${index}`);
    }
    const leader = typeof p.leader === 'number' && p.leader >= 0 ? p.leader : null;
    const offlineReplicas = isIntegerArray(p.offlineReplicas) ? p.offlineReplicas : [];
    return { partition: index, leader, leaderEpoch: p.leaderEpoch as number, replicas: p.replicas, isr: p.isr, offlineReplicas };
  });
  return { name, id: typeof topic.id === 'string' ? topic.id : '', partitions };
}

export function parseBrokers(answer: unknown): BrokerMetadata[] {
  if (!Array.isArray(answer) || answer.length > BROKERS_MAX) throw malformed('brokers');
  return answer.map((raw: unknown) => {
    const b = raw as { id?: unknown; address?: unknown; state?: unknown; decommissioned?: unknown } | null;
    if (b === null || typeof b !== 'object' || !Number.isInteger(b.id) || typeof b.address !== 'string') throw malformed('brokers');
    return { id: b.id as number, address: b.address, state: b.state === 'alive' ? 'alive' : 'fenced', decommissioned: b.decommissioned === true };
  });
}
