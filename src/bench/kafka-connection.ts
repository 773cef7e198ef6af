// One Kafka-protocol TCP connection for the benchmarks: size-prefixed requests encoded with our
// own codec, many in flight, answers matched in order (a Kafka broker answers a connection's
// requests in the order it read them, so the oldest waiting request owns the next answer).
// Only what `bench kafka` needs: no metadata, retries, reconnects or authentication.
import assert from 'node:assert/strict';
import net from 'node:net';
import { decodeResponse, encodeRequest } from '../kafka/protocol/apis.js';
import type { Struct } from '../kafka/protocol/spec.js';

const SIZE_PREFIX_BYTES = 4;
/** Requests waiting for answers on one connection; the listener reads at most 64 ahead (defaultKafkaListenerLimits). */
export const KAFKA_IN_FLIGHT_MAX = 64;
/** The largest answer frame taken: a 64 MiB Fetch (the codec's bytes limit) and its headers. */
const RESPONSE_BYTES_MAX = 65 * 1024 * 1024;
const CONNECT_TIMEOUT_MS = 10_000;
const CORRELATION_ID_MAX = 0x7fffffff;

interface Pending {
  readonly correlationId: number;
  readonly apiKey: number;
  readonly apiVersion: number;
  readonly resolve: (body: Struct) => void;
  readonly reject: (error: Error) => void;
  readonly timer: NodeJS.Timeout;
}

export class KafkaConnection {
  private readonly pending: Pending[] = [];
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** The size of the frame being received, once its prefix is here. */
  private frameBytes: number | null = null;
  private nextCorrelationId = 1;
  private failure: Error | null = null;

  private constructor(private readonly socket: net.Socket, private readonly clientId: string, private readonly requestTimeoutMs: number) {
    socket.setNoDelay(true);
    socket.on('data', (chunk: Buffer) => { this.onData(chunk); });
    socket.on('error', (error) => { this.fail(error); });
    socket.on('close', () => { this.fail(new Error('the Kafka connection closed')); });
  }

  static connect(host: string, port: number, clientId: string, requestTimeoutMs: number): Promise<KafkaConnection> {
    assert.ok(requestTimeoutMs > 0, 'a request timeout is positive');
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host, port });
      const timer = setTimeout(() => { socket.destroy(new Error(`no Kafka connection to ${host}:${port} within ${CONNECT_TIMEOUT_MS} ms`)); }, CONNECT_TIMEOUT_MS);
      socket.once('error', (error) => { clearTimeout(timer); reject(error); });
      socket.once('connect', () => {
        clearTimeout(timer);
        socket.removeAllListeners('error');
        resolve(new KafkaConnection(socket, clientId, requestTimeoutMs));
      });
    });
  }

  get inFlight(): number {
    return this.pending.length;
  }

  /** Sends one request; resolves with its decoded answer body. */
  call(apiKey: number, apiVersion: number, body: Struct): Promise<Struct> {
    if (this.failure !== null) return Promise.reject(this.failure);
    assert.ok(this.pending.length < KAFKA_IN_FLIGHT_MAX, `at most ${KAFKA_IN_FLIGHT_MAX} requests in flight on one connection`);
    const correlationId = this.nextCorrelationId;
    this.nextCorrelationId = correlationId === CORRELATION_ID_MAX ? 1 : correlationId + 1;
    const frame = encodeRequest({ apiKey, apiVersion, correlationId, clientId: this.clientId }, body);
    const size = Buffer.allocUnsafe(SIZE_PREFIX_BYTES);
    size.writeInt32BE(frame.length, 0);
    return new Promise((resolve, reject) => {
      // A lost answer would stall every later one on this connection: fail them all.
      const timer = setTimeout(() => { this.fail(new Error(`no answer to Kafka API ${apiKey} v${apiVersion} within ${this.requestTimeoutMs} ms`)); }, this.requestTimeoutMs);
      this.pending.push({ correlationId, apiKey, apiVersion, resolve, reject, timer });
      this.socket.cork();
      this.socket.write(size);
      this.socket.write(frame);
      this.socket.uncork();
    });
  }

  close(): void {
    this.fail(new Error('the Kafka connection was closed by the benchmark'));
  }

  private onData(chunk: Buffer): void {
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    while (this.failure === null) {
      if (this.frameBytes === null) {
        if (this.bufferedBytes < SIZE_PREFIX_BYTES) return;
        const first = this.chunks[0];
        const frameBytes = (first !== undefined && first.length >= SIZE_PREFIX_BYTES ? first : this.joined()).readInt32BE(0);
        if (frameBytes < 0 || frameBytes > RESPONSE_BYTES_MAX) {
          this.fail(new Error(`a Kafka answer of ${frameBytes} bytes (at most ${RESPONSE_BYTES_MAX})`));
          return;
        }
        this.frameBytes = frameBytes;
      }
      // Joined only once the whole frame is here: a big Fetch answer arrives in many chunks.
      if (this.bufferedBytes < SIZE_PREFIX_BYTES + this.frameBytes) return;
      const all = this.joined();
      const frame = all.subarray(SIZE_PREFIX_BYTES, SIZE_PREFIX_BYTES + this.frameBytes);
      const rest = all.subarray(SIZE_PREFIX_BYTES + this.frameBytes);
      this.chunks = rest.length === 0 ? [] : [rest];
      this.bufferedBytes = rest.length;
      this.frameBytes = null;
      this.answer(frame);
    }
  }

  /** The buffered bytes as one buffer (copied only when a frame spans chunks). */
  private joined(): Buffer {
    if (this.chunks.length > 1) this.chunks = [Buffer.concat(this.chunks, this.bufferedBytes)];
    const only = this.chunks[0];
    assert.ok(only !== undefined && only.length === this.bufferedBytes, 'the buffered bytes are one chunk');
    return only;
  }

  private answer(frame: Buffer): void {
    const pending = this.pending.shift();
    if (pending === undefined) {
      this.fail(new Error('a Kafka answer to no request'));
      return;
    }
    clearTimeout(pending.timer);
    let decoded: { correlationId: number; body: Struct };
    try {
      decoded = decodeResponse(pending.apiKey, pending.apiVersion, frame);
    } catch (error) {
      pending.reject(error instanceof Error ? error : new Error(String(error)));
      this.fail(new Error('an undecodable Kafka answer'));
      return;
    }
    if (decoded.correlationId !== pending.correlationId) {
      const error = new Error(`a Kafka answer for correlation id ${decoded.correlationId}, expected ${pending.correlationId}`);
      pending.reject(error);
      this.fail(error);
      return;
    }
    pending.resolve(decoded.body);
  }

  private fail(error: Error): void {
    if (this.failure !== null) return;
    this.failure = error;
    for (const pending of this.pending.splice(0)) {
      clearTimeout(pending.timer);
      pending.reject(error);
    }
    this.socket.destroy();
  }
}
