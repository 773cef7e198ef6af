// The producer: send() picks a partition (explicit, murmur2 of the key as Kafka's default
// partitioner, or sticky for null keys), appends the record to that partition's open batch,
// and a sender pushes batches as RecordBatch v2 bytes to partition leaders, one request in
// flight per partition so that retries cannot reorder records. A request carries every batch
// of its partition that waited for the one before (up to requestBytesMax), so a partition's
// throughput is not one batch per round trip. With idempotence (the default)
// every batch carries the producer id, epoch and a per-partition sequence; a retry resends
// the same bytes, and the broker answers a duplicate with the offsets it wrote the first time.
import assert from 'node:assert/strict';
import { DriftwoodError, isDriftwoodError } from '../../storage/errors.js';
import { buildBatch, type ProducerRecord } from '../../storage/record-batch.js';
import { partitionForKey } from '../partitioner.js';
import { BufferPool, PartitionQueue, nextSequence, normalizeHeaders, recordSizeBytes, toBytes, type ProducerBatch, type RecordMetadata } from './accumulator.js';
import { Connections, errorFromAnswer } from './connections.js';
import { Metadata, type TopicMetadata } from './metadata.js';
import { checkedInteger, resolveClientOptions, type ClientOptions, type ResolvedClientOptions } from './options.js';
import { asDriftwoodError, backoffMs, isRetriable, monotonicMs, needsMetadataRefresh, retryUntil, Timers, Wakeup } from './retry.js';

export type { RecordMetadata } from './accumulator.js';

export type Acks = 0 | 1 | 'all';

export interface ProducerOptions extends ClientOptions {
  /** 'all' (default) waits for the whole ISR, 1 for the leader's log, 0 for nothing. */
  readonly acks?: Acks;
  /** Exactly one copy of each record per send, across retries (default true; needs acks 'all'). */
  readonly idempotent?: boolean;
  /** A batch is sent once this full (default 16384, Kafka's batch.size). */
  readonly batchBytesMax?: number;
  /** How long a batch that is not full waits for more records (default 5). */
  readonly lingerMs?: number;
  /** Bytes of records not yet answered (default 32 MiB); send() waits for room when full. */
  readonly bufferBytesMax?: number;
  /** How long send() waits for metadata and buffer room before it rejects (default 60000). */
  readonly maxBlockMs?: number;
  /** How long a record may take from send() to its answer, retries included (default 120000). */
  readonly deliveryTimeoutMs?: number;
  /** The largest record batch a request may carry (default 1 MiB, Kafka's max.request.size). */
  readonly requestBytesMax?: number;
}

export type HeaderValue = Buffer | Uint8Array | string | null;

export interface ProducerMessage {
  readonly topic: string;
  readonly key?: Buffer | Uint8Array | string | null;
  readonly value: Buffer | Uint8Array | string | null;
  readonly headers?: Readonly<Record<string, HeaderValue>> | ReadonlyArray<{ key: string; value: HeaderValue }>;
  /** Overrides the partitioner. */
  readonly partition?: number;
  /** The record's timestamp (default: now). */
  readonly timestampMs?: number;
}

export interface ProducerMetrics {
  /** Produce requests sent, retries included. */
  requests: number;
  /** Batches built (each is sent once, or more when retried). */
  batches: number;
  records: number;
  retries: number;
  /** Times a new producer id was taken after a sequence or producer error. */
  producerIdResets: number;
}

const BATCH_CONTENT_TYPE = 'application/vnd.driftwood.batch';
/** The broker's own bound on a produce's ISR wait. */
const PRODUCE_TIMEOUT_MS_MAX = 300_000;
/** Time on top of the broker's ISR wait for its answer to travel back before the client gives up on it. */
const ANSWER_SLACK_MS = 1000;
/** After close(timeoutMs) gives up, how long a request in flight may still be answered before its connection is cut. */
const ABANDON_GRACE_MS = 1000;
const PRODUCER_ID_CODES = new Set(['OUT_OF_ORDER_SEQUENCE_NUMBER', 'UNKNOWN_PRODUCER_ID', 'INVALID_PRODUCER_EPOCH']);

interface ProducerId {
  readonly producerId: number;
  readonly producerEpoch: number;
  readonly generation: number;
}

interface Resolved {
  readonly acks: Acks;
  readonly idempotent: boolean;
  readonly batchBytesMax: number;
  readonly lingerMs: number;
  readonly bufferBytesMax: number;
  readonly maxBlockMs: number;
  readonly deliveryTimeoutMs: number;
  readonly requestBytesMax: number;
}

function resolveProducerOptions(options: ProducerOptions, client: ResolvedClientOptions): Resolved {
  const acks: unknown = options.acks ?? 'all';
  if (acks !== 0 && acks !== 1 && acks !== 'all') throw new DriftwoodError('INVALID_CONFIG', 'acks is 0, 1 or "all"');
  // As Kafka: idempotence is on by default, off by default when acks says otherwise, and an error when both are asked for.
  if (options.idempotent === true && acks !== 'all') throw new DriftwoodError('INVALID_CONFIG', 'an idempotent producer needs acks "all"');
  const resolved: Resolved = {
    acks,
    idempotent: options.idempotent ?? acks === 'all',
    batchBytesMax: checkedInteger('batchBytesMax', options.batchBytesMax, 16_384, 1, 64 * 1024 * 1024),
    lingerMs: checkedInteger('lingerMs', options.lingerMs, 5, 0, 60_000),
    bufferBytesMax: checkedInteger('bufferBytesMax', options.bufferBytesMax, 32 * 1024 * 1024, 1024, 2 ** 40),
    maxBlockMs: checkedInteger('maxBlockMs', options.maxBlockMs, 60_000, 0, 3_600_000),
    deliveryTimeoutMs: checkedInteger('deliveryTimeoutMs', options.deliveryTimeoutMs, 120_000, 1, 24 * 3_600_000),
    requestBytesMax: checkedInteger('requestBytesMax', options.requestBytesMax, 1024 * 1024, 1024, 64 * 1024 * 1024),
  };
  if (resolved.deliveryTimeoutMs < resolved.lingerMs + client.requestTimeoutMs) {
    throw new DriftwoodError('INVALID_CONFIG', `deliveryTimeoutMs ${resolved.deliveryTimeoutMs} is below lingerMs + requestTimeoutMs (${resolved.lingerMs + client.requestTimeoutMs})`);
  }
  return resolved;
}

export class Producer {
  private readonly client: ResolvedClientOptions;
  private readonly config: Resolved;
  private readonly timers = new Timers();
  private readonly connections: Connections;
  private readonly metadata: Metadata;
  private readonly buffer: BufferPool;
  private readonly queues = new Map<string, PartitionQueue>();
  /** Per topic: the partition null-key records stick to, and the batch they went into. */
  private readonly sticky = new Map<string, { partition: number; batch: ProducerBatch }>();
  private readonly metricsValue: ProducerMetrics = { requests: 0, batches: 0, records: 0, retries: 0, producerIdResets: 0 };
  /** Sends that wait for metadata or buffer room, chained so that they append in call order. */
  private blockedChain: Promise<void> = Promise.resolve();
  private blockedSends = 0;
  private flushing = 0;
  private closedValue = false;
  private closing: Promise<void> | null = null;
  private readonly wake = new Wakeup(this.timers, () => { this.pump(); });
  private producerIdValue: ProducerId | null = null;
  private producerIdFetch: Promise<ProducerId> | null = null;
  private producerIdGeneration = 0;

  constructor(options: ProducerOptions) {
    this.client = resolveClientOptions(options, 'producer');
    this.config = resolveProducerOptions(options, this.client);
    this.connections = new Connections(this.client.requestsPerBrokerMax, this.client.security);
    this.metadata = new Metadata(this.connections, this.client, this.timers);
    this.buffer = new BufferPool(this.config.bufferBytesMax, this.timers);
  }

  get closed(): boolean {
    return this.closedValue;
  }

  /** Counters since the producer was made (how well it batches, how often it retried). */
  metrics(): ProducerMetrics {
    return { ...this.metricsValue };
  }

  /**
   * Sends one record; resolves with its partition and offset once the broker has it as acks
   * asks (offset -1 with acks=0). Rejects with BUFFER_EXHAUSTED when it cannot be buffered
   * within maxBlockMs, REQUEST_TIMED_OUT when it is not answered within deliveryTimeoutMs
   * (it may still have been written), CLIENT_CLOSED after close(), or the broker's error
   * when retrying cannot help (MESSAGE_TOO_LARGE, OUT_OF_ORDER_SEQUENCE_NUMBER, ...).
   */
  send(message: ProducerMessage): Promise<RecordMetadata> {
    if (this.closedValue) return Promise.reject(new DriftwoodError('CLIENT_CLOSED', 'send after close'));
    let record: ProducerRecord;
    let sizeBytes: number;
    try {
      record = this.toRecord(message);
      sizeBytes = recordSizeBytes(record);
      this.checkSize(sizeBytes);
    } catch (error) {
      return Promise.reject(asDriftwoodError(error));
    }
    const deadlineMs = monotonicMs() + this.config.maxBlockMs;
    const known = this.metadata.known(message.topic);
    // The common case appends at once, in call order; anything that must wait queues behind
    // every send already waiting, so records of one caller keep their order.
    if (this.blockedSends === 0 && known !== undefined && this.buffer.tryReserve(sizeBytes)) {
      return this.appendReserved(known, message, record, sizeBytes);
    }
    this.blockedSends += 1;
    const appended = this.blockedChain.then(() => this.appendBlocking(message, record, sizeBytes, deadlineMs));
    this.blockedChain = appended.then(() => undefined, () => undefined).finally(() => { this.blockedSends -= 1; });
    return appended.then((sent) => sent.answer);
  }

  /** Resolves once every record sent before the call has its answer (whatever lingerMs says). */
  async flush(): Promise<void> {
    // Sends still waiting to append go first, so that they fill batches as they would have.
    await this.blockedChain;
    this.flushing += 1;
    try {
      const batches = [...this.queues.values()].flatMap((queue) => queue.batches);
      this.pump();
      await Promise.all(batches.map((batch) => batch.settled));
    } finally {
      this.flushing -= 1;
    }
  }

  /**
   * Sends what is buffered and waits for the answers (up to `timeoutMs`, default no limit
   * beyond deliveryTimeoutMs), then closes every connection. Records still unanswered at the
   * timeout reject with CLIENT_CLOSED (they may have been written). Later sends reject with
   * CLIENT_CLOSED.
   */
  close(timeoutMs = Infinity): Promise<void> {
    this.closedValue = true;
    this.closing ??= (async () => {
      const flushed = this.flush();
      await (timeoutMs === Infinity ? flushed : Promise.race([flushed, this.timers.sleep(timeoutMs)]));
      this.buffer.close(new DriftwoodError('CLIENT_CLOSED', 'the producer closed while the send waited for buffer room'));
      this.timers.close();
      const abandoned = new DriftwoodError('CLIENT_CLOSED', 'the producer closed before the record was answered; it may have been written');
      const batches = [...this.queues.values()].flatMap((queue) => queue.batches.map((batch, index) => ({ queue, batch, inFlight: queue.inFlight && index < queue.requestBatches })));
      // A batch in flight fails when its connection closes; the others fail here.
      for (const { queue, batch, inFlight } of batches) if (!inFlight) this.failBatch(queue, batch, abandoned);
      await this.connections.close(timeoutMs === Infinity ? undefined : ABANDON_GRACE_MS);
      await Promise.all(batches.map(({ batch }) => batch.settled));
    })();
    return this.closing;
  }

  // --- appending ---

  private toRecord(message: ProducerMessage): ProducerRecord {
    if (typeof message.topic !== 'string' || message.topic.length === 0) throw new DriftwoodError('INVALID_REQUEST', 'a record names its topic');
    const timestampMs = message.timestampMs ?? Date.now();
    if (!Number.isSafeInteger(timestampMs) || timestampMs < 0) throw new DriftwoodError('INVALID_REQUEST', 'timestampMs is a non-negative integer');
    if (message.partition !== undefined && (!Number.isInteger(message.partition) || message.partition < 0)) {
      throw new DriftwoodError('INVALID_REQUEST', `partition ${String(message.partition)} is not a partition number`);
    }
    return {
      key: toBytes(message.key, 'key'),
      value: toBytes(message.value, 'value'),
      headers: normalizeHeaders(message.headers as Readonly<Record<string, Buffer | string | null>> | undefined),
      timestampMs,
    };
  }

  private checkSize(sizeBytes: number): void {
    if (sizeBytes + 61 > this.config.requestBytesMax) {
      throw new DriftwoodError('MESSAGE_TOO_LARGE', `the record takes up to ${sizeBytes} bytes, over requestBytesMax ${this.config.requestBytesMax}`);
    }
    if (sizeBytes > this.config.bufferBytesMax) {
      throw new DriftwoodError('MESSAGE_TOO_LARGE', `the record takes up to ${sizeBytes} bytes, over bufferBytesMax ${this.config.bufferBytesMax}`);
    }
  }

  private async appendBlocking(message: ProducerMessage, record: ProducerRecord, sizeBytes: number, deadlineMs: number): Promise<{ answer: Promise<RecordMetadata> }> {
    const topic = this.metadata.known(message.topic) ?? await this.metadata.topicWithin(message.topic, deadlineMs);
    await this.buffer.reserve(sizeBytes, Math.max(0, deadlineMs - monotonicMs()));
    return { answer: this.appendReserved(topic, message, record, sizeBytes) };
  }

  /** Appends a record whose buffer bytes are reserved; the returned promise is its answer. */
  private appendReserved(topic: TopicMetadata, message: ProducerMessage, record: ProducerRecord, sizeBytes: number): Promise<RecordMetadata> {
    let partition: number;
    try {
      partition = this.choosePartition(topic, message, record, sizeBytes);
    } catch (error) {
      this.buffer.release(sizeBytes);
      return Promise.reject(asDriftwoodError(error));
    }
    const queue = this.queueFor(topic.name, partition);
    const batch = queue.batchFor(sizeBytes, this.config.batchBytesMax, monotonicMs());
    if (record.key === null && message.partition === undefined) this.sticky.set(topic.name, { partition, batch });
    this.metricsValue.records += 1;
    const answer = new Promise<RecordMetadata>((resolve, reject) => { batch.add({ record, sizeBytes, resolve, reject }); });
    this.pump();
    return answer;
  }

  private choosePartition(topic: TopicMetadata, message: ProducerMessage, record: ProducerRecord, sizeBytes: number): number {
    const count = topic.partitions.length;
    assert(count > 0, 'a topic has partitions');
    if (message.partition !== undefined) {
      if (message.partition >= count) throw new DriftwoodError('UNKNOWN_TOPIC_OR_PARTITION', `${topic.name} has ${count} partitions, not ${message.partition + 1}`);
      return message.partition;
    }
    if (record.key !== null && record.key !== undefined) return partitionForKey(record.key, count);
    return this.stickyPartition(topic, sizeBytes);
  }

  /**
   * Kafka's sticky partitioner: null-key records go to one partition while its batch is open,
   * and to another (at random, preferring partitions with a leader) once that batch is full
   * or sent, so null-key records fill batches instead of spreading thin ones everywhere.
   */
  private stickyPartition(topic: TopicMetadata, sizeBytes: number): number {
    const count = topic.partitions.length;
    const current = this.sticky.get(topic.name);
    if (current !== undefined && current.partition < count) {
      const last = this.queues.get(queueKey(topic.name, current.partition))?.batches.at(-1);
      if (last === current.batch && last.accepts(sizeBytes, this.config.batchBytesMax)) return current.partition;
    }
    const led = topic.partitions.filter((p) => p.leader !== null).map((p) => p.partition);
    const candidates = (led.length > 0 ? led : topic.partitions.map((p) => p.partition)).filter((p) => count === 1 || p !== current?.partition);
    const chosen = candidates[Math.floor(Math.random() * candidates.length)] ?? 0;
    assert(chosen >= 0 && chosen < count);
    return chosen;
  }

  private queueFor(topic: string, partition: number): PartitionQueue {
    const key = queueKey(topic, partition);
    let queue = this.queues.get(key);
    if (queue === undefined) {
      queue = new PartitionQueue(topic, partition);
      this.queues.set(key, queue);
    }
    return queue;
  }

  // --- sending ---

  /** Starts every batch that is ready and arms one timer for the next that will be. */
  private pump(): void {
    if (this.timers.closed) return;
    const nowMs = monotonicMs();
    let nextMs = Infinity;
    for (const queue of this.queues.values()) nextMs = Math.min(nextMs, this.pumpQueue(queue, nowMs));
    this.wake.at(nextMs);
  }

  /** Expires, starts or schedules the queue's batches; returns when to look at it again. */
  private pumpQueue(queue: PartitionQueue, nowMs: number): number {
    this.expire(queue, nowMs);
    const head = queue.batches[0];
    if (head === undefined) return Infinity;
    // The request's own batches expire through retryOrFail; the first one after them here.
    const waiting = queue.batches[queue.requestBatches];
    const expiryMs = waiting === undefined ? Infinity : waiting.createdMs + this.config.deliveryTimeoutMs;
    if (queue.inFlight) return expiryMs;
    const readyMs = this.readyAtMs(queue, head);
    if (readyMs > nowMs) return Math.min(readyMs, expiryMs);
    void this.sendRequest(queue);
    return Infinity;
  }

  private readyAtMs(queue: PartitionQueue, head: ProducerBatch): number {
    if (head.attempts > 0) return head.retryAtMs;
    const full = queue.batches.length > 1 || head.sizeBytes >= this.config.batchBytesMax;
    if (full || this.flushing > 0 || this.closedValue || this.buffer.exhausted) return 0;
    return head.createdMs + this.config.lingerMs;
  }

  /** Fails batches that waited deliveryTimeoutMs without being sent (Kafka expires them the same way). */
  private expire(queue: PartitionQueue, nowMs: number): void {
    for (let index = queue.requestBatches; index < queue.batches.length;) {
      const batch = queue.batches[index] as ProducerBatch;
      if (nowMs < batch.createdMs + this.config.deliveryTimeoutMs) {
        index += 1;
        continue;
      }
      this.failBatch(queue, batch, new DriftwoodError('REQUEST_TIMED_OUT', `${batch.recordCount} records for ${batch.topic}-${batch.partition} were not answered within deliveryTimeoutMs ${this.config.deliveryTimeoutMs}${batch.attempts > 0 ? '; they may have been written' : ''}`));
    }
  }

  private async sendRequest(queue: PartitionQueue): Promise<void> {
    assert(!queue.inFlight && queue.batches.length > 0, 'one request in flight per partition');
    queue.inFlight = true;
    if (queue.requestBatches === 0) queue.requestBatches = this.requestBatchCount(queue);
    const batches = queue.batches.slice(0, queue.requestBatches);
    // Sealed before anything is awaited: a record appended while the producer id is on its way
    // would be answered for without being in the bytes.
    for (const batch of batches) batch.sealed = true;
    const recordCount = batches.reduce((sum, batch) => sum + batch.recordCount, 0);
    try {
      const bytes = await this.requestBytes(queue, batches);
      const leader = await this.metadata.currentLeader(queue.topic, queue.partition);
      const timeoutMs = Math.min(this.client.requestTimeoutMs, PRODUCE_TIMEOUT_MS_MAX);
      const path = `/v1/topics/${encodeURIComponent(queue.topic)}/partitions/${queue.partition}/records?acks=${this.config.acks}&timeoutMs=${timeoutMs}`;
      this.metricsValue.requests += 1;
      const answer = await this.connections.request(leader.address, { method: 'POST', path, body: bytes, contentType: BATCH_CONTENT_TYPE, timeoutMs: timeoutMs + ANSWER_SLACK_MS });
      if (answer.status >= 300) throw errorFromAnswer(answer);
      this.complete(queue, batches, this.config.acks === 0 ? -1 : baseOffsetOf(answer.body, recordCount));
    } catch (error) {
      this.retryOrFail(queue, batches, recordCount, asDriftwoodError(error));
    } finally {
      queue.inFlight = false;
      this.pump();
    }
  }

  /** How many of the queue's first batches one request takes: at least one, then while they fit requestBytesMax. */
  private requestBatchCount(queue: PartitionQueue): number {
    let count = 0;
    let bytes = 0;
    for (const batch of queue.batches) {
      if (count > 0 && bytes + batch.sizeBytes > this.config.requestBytesMax) break;
      bytes += batch.sizeBytes;
      count += 1;
    }
    return count;
  }

  /** The request's body: its batches' bytes, built at the first send and the same for every retry. */
  private async requestBytes(queue: PartitionQueue, batches: readonly ProducerBatch[]): Promise<Buffer> {
    const parts: Buffer[] = [];
    for (const batch of batches) parts.push(batch.bytes ?? await this.freeze(queue, batch));
    return parts.length === 1 ? parts[0] as Buffer : Buffer.concat(parts);
  }

  /** Builds the batch's bytes once, with the producer id and next sequence when idempotent. */
  private async freeze(queue: PartitionQueue, batch: ProducerBatch): Promise<Buffer> {
    assert(batch.sealed && batch.bytes === null);
    if (!this.config.idempotent) {
      batch.bytes = buildBatch(batch.records.map((pending) => pending.record));
    } else {
      const recordCount = batch.recordCount;
      const id = await this.producerId(batch.createdMs + this.config.deliveryTimeoutMs);
      assert.equal(batch.recordCount, recordCount, 'the batch changed while the producer id was on its way');
      if (queue.sequenceGeneration !== id.generation) {
        queue.sequenceGeneration = id.generation;
        queue.nextSequence = 0;
      }
      const baseSequence = queue.nextSequence;
      batch.bytes = buildBatch(batch.records.map((pending) => pending.record), { producerId: id.producerId, producerEpoch: id.producerEpoch, baseSequence });
      batch.sequenced = true;
      queue.nextSequence = nextSequence(baseSequence, batch.recordCount);
    }
    this.metricsValue.batches += 1;
    return batch.bytes;
  }

  /** The request's batches are written from `baseOffset` on (-1: acks=0), in their order. */
  private complete(queue: PartitionQueue, batches: readonly ProducerBatch[], baseOffset: number): void {
    assert(batches.length === queue.requestBatches && batches.every((batch, index) => queue.batches[index] === batch), 'the answered batches are the ones in flight');
    queue.batches.splice(0, batches.length);
    queue.requestBatches = 0;
    let offset = baseOffset;
    for (const batch of batches) {
      this.buffer.release(batch.bufferBytes);
      batch.complete(baseOffset < 0 ? -1 : offset);
      offset += batch.recordCount;
    }
  }

  /** Retries the request (the same batches, the same bytes) after a backoff, or fails all its batches. */
  private retryOrFail(queue: PartitionQueue, batches: readonly ProducerBatch[], recordCount: number, error: DriftwoodError): void {
    if (needsMetadataRefresh(error)) this.metadata.invalidate(queue.topic);
    const head = batches[0] as ProducerBatch;
    // A leader that moved or died is looked up again before the retry, so the retry does not
    // back off further each time: after a kill -9 the doubled waits (up to retryBackoffMsMax)
    // kept producers away from the new leader for up to a second after it took over.
    const waitMs = needsMetadataRefresh(error) ? backoffMs(0, this.client) : backoffMs(head.attempts, this.client);
    for (const batch of batches) batch.attempts += 1;
    // The oldest batch's deadline is the request's.
    const deadlineMs = head.createdMs + this.config.deliveryTimeoutMs;
    if (isRetriable(error) && !this.timers.closed) {
      if (monotonicMs() + waitMs < deadlineMs) {
        head.retryAtMs = monotonicMs() + waitMs;
        this.metricsValue.retries += 1;
        return;
      }
      error = new DriftwoodError('REQUEST_TIMED_OUT', `${recordCount} records for ${queue.topic}-${queue.partition} were not answered within deliveryTimeoutMs ${this.config.deliveryTimeoutMs}; they may have been written (last error ${error.code}: ${error.message})`, { lastError: error.code });
    }
    for (const batch of batches) this.failBatch(queue, batch, error);
  }

  /**
   * Fails a batch's records. When the batch may have carried a sequence the broker did not
   * take, later batches of its partition would be refused as out of order, so the producer
   * takes a new producer id (sequences start at 0 again) before it sends anything new.
   */
  private failBatch(queue: PartitionQueue, batch: ProducerBatch, error: DriftwoodError): void {
    const index = queue.batches.indexOf(batch);
    assert(index >= 0, 'a failed batch is queued');
    queue.batches.splice(index, 1);
    if (index < queue.requestBatches) queue.requestBatches -= 1;
    this.buffer.release(batch.bufferBytes);
    if (batch.sequenced || PRODUCER_ID_CODES.has(error.code)) this.resetProducerId();
    batch.fail(error);
  }

  // --- idempotence ---

  private resetProducerId(): void {
    if (this.producerIdValue === null && this.producerIdFetch === null) return;
    this.producerIdValue = null;
    this.producerIdGeneration += 1;
    this.metricsValue.producerIdResets += 1;
  }

  /** The producer id batches are stamped with, taken from any broker (POST /v1/producer-ids) when there is none. */
  private async producerId(deadlineMs: number): Promise<ProducerId> {
    for (;;) {
      if (this.producerIdValue !== null) return this.producerIdValue;
      this.producerIdFetch ??= this.fetchProducerId(deadlineMs).finally(() => { this.producerIdFetch = null; });
      const id = await this.producerIdFetch;
      // A reset while the id was on its way makes it stale only if it came from before the reset.
      if (id.generation === this.producerIdGeneration) {
        this.producerIdValue = id;
        return id;
      }
    }
  }

  private async fetchProducerId(deadlineMs: number): Promise<ProducerId> {
    const generation = this.producerIdGeneration;
    const ask = async (): Promise<ProducerId> => {
      const answer = await this.metadata.anyBroker((address) => this.connections.json<{ producerId?: unknown; producerEpoch?: unknown } | null>(address, { method: 'POST', path: '/v1/producer-ids', body: {}, timeoutMs: this.client.requestTimeoutMs }));
      const producerId = answer?.producerId;
      const producerEpoch = answer?.producerEpoch;
      if (!Number.isSafeInteger(producerId) || !Number.isInteger(producerEpoch)) throw new DriftwoodError('CORRUPT_MESSAGE', 'the producer-ids answer has no producerId and producerEpoch');
      return { producerId: producerId as number, producerEpoch: producerEpoch as number, generation };
    };
    return retryUntil(ask, isRetriable, deadlineMs, this.client, this.timers);
  }
}

function queueKey(topic: string, partition: number): string {
  return `${partition}:${topic}`;
}

/** The answer's base offset, checked against the batch it answers (the pair check of what was sent). */
function baseOffsetOf(body: Buffer, recordCount: number): number {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body.toString('utf8'));
  } catch {
    parsed = null;
  }
  const answer = parsed as { baseOffset?: unknown; recordCount?: unknown } | null;
  const baseOffset = answer?.baseOffset;
  if (!Number.isSafeInteger(baseOffset) || (baseOffset as number) < 0) {
    throw new DriftwoodError('CORRUPT_MESSAGE', 'the produce answer has no baseOffset');
  }
  assert(answer?.recordCount === undefined || answer.recordCount === recordCount, `the broker wrote ${String(answer?.recordCount)} records of a batch of ${recordCount}`);
  return baseOffset as number;
}

export function isProducerIdError(error: unknown): boolean {
  return isDriftwoodError(error) && PRODUCER_ID_CODES.has(error.code);
}
