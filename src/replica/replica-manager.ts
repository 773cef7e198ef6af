// The replicas this broker hosts, kept in step with the metadata image: every partition whose
// replica list names this broker gets a log (opened or created under the topic's configs)
// and a Partition in the role the image gives it; a partition that leaves the image (topic
// deleted) or this broker's replica list is closed and its directory removed. Changes are
// applied one reconcile pass at a time, in image order, so a partition never sees an older
// state after a newer one.
import type { Clock, TimerHandle } from '../../storage/clock.js';
import type { Disk } from '../../storage/disk.js';
import { DriftwoodError } from '../../storage/errors.js';
import type { LogConfig } from '../../storage/log-config.js';
import { PartitionLog } from '../../storage/partition-log.js';
import type { MetadataImage, PartitionState, TopicState } from '../controller/image.js';
import { effectiveTopicConfig } from '../controller/topic-config.js';
import { Partition, type ReplicaConfig } from './partition.js';

export interface ReplicaManagerConfig extends ReplicaConfig {
  /** How often hosted logs apply retention (Kafka: log.retention.check.interval.ms). */
  readonly retentionCheckMs: number;
}

export const defaultReplicaManagerConfig: ReplicaManagerConfig = { replicaLagTimeMaxMs: 10_000, retentionCheckMs: 300_000 };

export interface ReplicaManagerPorts {
  readonly brokerId: number;
  readonly clock: Clock;
  readonly disk: Disk;
  readonly image: MetadataImage;
  /** A hosted log failed (disk error) or an invariant broke: the broker must stop. */
  readonly onFatal: (error: unknown) => void;
}

export interface PartitionOffsets {
  readonly partition: number;
  readonly logStartOffset: number;
  readonly logEndOffset: number;
  readonly highWatermark: number;
}

/** The segment file format's floor; Kafka's segment.bytes floor is lower (14). */
const SEGMENT_BYTES_FLOOR = 1024;
const BATCH_HEADER_BYTES = 61;

/** A topic's configs as partition-log settings. */
export function logConfigFor(topic: TopicState): Partial<LogConfig> {
  const c = effectiveTopicConfig(topic.configs);
  return {
    segmentBytesMax: Math.min(Math.max(c['segment.bytes'], SEGMENT_BYTES_FLOOR), 2 ** 31 - 1),
    segmentAgeMsMax: c['segment.ms'],
    messageBytesMax: Math.max(c['max.message.bytes'], BATCH_HEADER_BYTES),
    retentionMs: c['retention.ms'],
    retentionBytes: c['retention.bytes'],
    flushIntervalMs: c['flush.ms'],
    timestampType: c['message.timestamp.type'],
  };
}

/** The directory of a hosted partition: readable, and unique across a deleted and recreated name. */
export function partitionDir(topic: TopicState, partition: number): string {
  return `${topic.name}-${partition}.${topic.topicId}`;
}

function key(topicId: string, partition: number): string {
  return `${topicId}/${partition}`;
}

export class ReplicaManager {
  private readonly hosted = new Map<string, { partition: Partition; dir: string }>();
  private reconciling: Promise<void> | null = null;
  private again = false;
  private closed = false;
  private unsubscribe: (() => void) | null = null;
  private retentionTimer: TimerHandle | null = null;

  constructor(private readonly config: ReplicaManagerConfig, private readonly ports: ReplicaManagerPorts) {}

  /** Starts following the image; resolves once the partitions it names now are open. */
  async start(): Promise<void> {
    this.unsubscribe = this.ports.image.onChange(() => { void this.reconcile(); });
    this.scheduleRetention();
    await this.reconcile();
  }

  /** The hosted replica of a partition, if this broker hosts one. */
  partition(topicId: string, partition: number): Partition | undefined {
    return this.hosted.get(key(topicId, partition))?.partition;
  }

  get hostedCount(): number {
    return this.hosted.size;
  }

  /** Offsets of the partitions of a topic this broker leads. */
  leaderOffsets(topicId: string): PartitionOffsets[] {
    const offsets: PartitionOffsets[] = [];
    for (const { partition } of this.hosted.values()) {
      if (partition.state.topicId !== topicId || !partition.isLeader) continue;
      offsets.push({ partition: partition.state.partition, logStartOffset: partition.log.logStartOffset, logEndOffset: partition.log.logEndOffset, highWatermark: partition.highWatermark });
    }
    return offsets.sort((a, b) => a.partition - b.partition);
  }

  /** Brings the hosted set in line with the image; concurrent calls coalesce into one more pass. */
  reconcile(): Promise<void> {
    if (this.reconciling !== null) {
      this.again = true;
      return this.reconciling;
    }
    this.reconciling = (async () => {
      try {
        do {
          this.again = false;
          await this.reconcileOnce();
        } while (this.passRequested());
      } catch (error) {
        this.ports.onFatal(error);
      } finally {
        this.reconciling = null;
      }
    })();
    return this.reconciling;
  }

  /** Another change arrived during the pass (a method, as the flag changes across awaits). */
  private passRequested(): boolean {
    return this.again && !this.closed;
  }

  private async reconcileOnce(): Promise<void> {
    const image = this.ports.image;
    const wanted = new Map<string, { topic: TopicState; state: PartitionState }>();
    for (const topic of image.topics()) {
      for (const state of image.partitions(topic.topicId) ?? []) {
        if (state.replicas.includes(this.ports.brokerId)) wanted.set(key(topic.topicId, state.partition), { topic, state });
      }
    }
    for (const [id, { partition, dir }] of [...this.hosted]) {
      if (this.closed) return;
      if (wanted.has(id)) continue;
      this.hosted.delete(id);
      partition.close();
      await partition.log.close();
      await this.ports.disk.removeDir(dir);
    }
    for (const [id, { topic, state }] of wanted) {
      if (this.closed) return;
      const current = this.hosted.get(id);
      if (current !== undefined) {
        const before = current.partition.state;
        if (before.partitionEpoch !== state.partitionEpoch || before.leaderEpoch !== state.leaderEpoch) await current.partition.update(state);
        continue;
      }
      const dir = partitionDir(topic, state.partition);
      const log = await PartitionLog.open({ disk: this.ports.disk, dir, clock: this.ports.clock, config: logConfigFor(topic) });
      const partition = await Partition.open(this.ports.brokerId, log, state, this.ports.clock, this.config, 0);
      this.hosted.set(id, { partition, dir });
    }
  }

  private scheduleRetention(): void {
    this.retentionTimer = this.ports.clock.setTimer(this.config.retentionCheckMs, () => {
      void this.applyRetention().finally(() => { if (!this.closed) this.scheduleRetention(); });
    });
  }

  private async applyRetention(): Promise<void> {
    for (const { partition } of [...this.hosted.values()]) {
      if (this.closed) return;
      try {
        await partition.log.applyRetention();
      } catch (error) {
        if (error instanceof DriftwoodError && error.code === 'LOG_CLOSED') continue; // removed meanwhile
        this.ports.onFatal(error);
        return;
      }
    }
  }

  async close(): Promise<void> {
    this.closed = true;
    this.unsubscribe?.();
    this.retentionTimer?.cancel();
    await this.reconciling;
    for (const { partition } of this.hosted.values()) {
      partition.close();
      await partition.log.close();
    }
    this.hosted.clear();
  }
}
