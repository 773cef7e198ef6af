// The Kafka-protocol listener: a TCP server speaking Kafka's framing (each request and each
// answer is an int32 size followed by that many bytes). It reads a request only as far as
// the first three header fields, to bound and count it, and hands the whole frame to a
// KafkaDispatcher. Many requests may be in flight on one connection; answers go out strictly
// in request order, as Kafka clients match them to requests by order as well as by
// correlation id (a slow answer holds back the later ones, as in Kafka's broker).
import assert from 'node:assert/strict';
import net from 'node:net';
import { isDriftwoodError } from '../../storage/errors.js';
import { readRequestHead, REQUEST_HEAD_BYTES, type ConnectionInfo, type KafkaDispatcher } from './dispatcher.js';
import { API_KEY_LABELLED_MAX, defaultKafkaListenerLimits, type KafkaListenerLimits } from './limits.js';

const SIZE_PREFIX_BYTES = 4;
const INT32_MAX = 2 ** 31 - 1;

/** Why the listener closed a connection (a bounded label set for metrics and tests). */
export type CloseReason = 'request-too-large' | 'bad-size' | 'idle' | 'slow-frame' | 'dispatcher-error' | 'peer-closed' | 'shutdown';

/** The pino methods the listener logs with (a pino Logger fits). */
export interface KafkaServerLog {
  warn(fields: object, message: string): void;
  error(fields: object, message: string): void;
}

/** Plain counters, read by node-metrics at scrape time. */
export class KafkaServerStats {
  connectionsOpen = 0;
  connectionsAccepted = 0;
  connectionsRefused = 0;
  /** Requests read, by api_key ('unknown' past API_KEY_LABELLED_MAX or below 0). */
  readonly requestsByApiKey = new Map<string, number>();
  readonly closesByReason = new Map<CloseReason, number>();

  countRequest(apiKey: number): void {
    const label = apiKey >= 0 && apiKey < API_KEY_LABELLED_MAX ? String(apiKey) : 'unknown';
    this.requestsByApiKey.set(label, (this.requestsByApiKey.get(label) ?? 0) + 1);
  }

  countClose(reason: CloseReason): void {
    this.closesByReason.set(reason, (this.closesByReason.get(reason) ?? 0) + 1);
  }
}

export interface KafkaServerOptions {
  readonly host: string;
  readonly port: number;
  readonly dispatcher: KafkaDispatcher;
  readonly log: KafkaServerLog;
  readonly limits?: KafkaListenerLimits;
}

export class KafkaServer {
  readonly stats = new KafkaServerStats();
  /** Each open connection, with a promise settled once its socket closed and it was counted out. */
  private readonly connections = new Map<KafkaConnection, Promise<void>>();
  private nextConnectionId = 1;
  private closing = false;

  private constructor(private readonly server: net.Server, private readonly options: KafkaServerOptions, private readonly limits: KafkaListenerLimits) {
    server.on('connection', (socket) => { this.accept(socket); });
  }

  /** Binds HOST:PORT (port 0: any free one) and starts accepting connections. */
  static async listen(options: KafkaServerOptions): Promise<KafkaServer> {
    const limits = options.limits ?? defaultKafkaListenerLimits;
    assert(limits.requestBytesMax >= REQUEST_HEAD_BYTES && limits.requestBytesMax <= INT32_MAX, 'requestBytesMax fits a request header and an int32');
    assert(limits.inFlightRequestsPerConnectionMax >= 1, 'at least one request in flight');
    const server = net.createServer({ allowHalfOpen: true, noDelay: true, keepAlive: true });
    const kafka = new KafkaServer(server, options, limits);
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen({ host: options.host, port: options.port }, () => {
        server.off('error', reject);
        resolve();
      });
    });
    return kafka;
  }

  /** Where it listens (the real port when asked for port 0). */
  get address(): { host: string; port: number } {
    const address = this.server.address();
    assert(address !== null && typeof address === 'object', 'a listening TCP server has an address');
    return { host: address.address, port: address.port };
  }

  /** Stops accepting, closes every connection (answers in flight are dropped) and resolves once the server is closed. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    const closed = new Promise<void>((resolve) => { this.server.close(() => { resolve(); }); });
    const gone = [...this.connections.values()];
    for (const connection of this.connections.keys()) connection.close('shutdown');
    await Promise.all([closed, ...gone]);
    assert.equal(this.connections.size, 0, 'every connection closed at shutdown');
  }

  private accept(socket: net.Socket): void {
    if (this.closing || this.connections.size >= this.limits.connectionsMax) {
      this.stats.connectionsRefused += 1;
      socket.destroy();
      return;
    }
    const info: ConnectionInfo = { id: this.nextConnectionId, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 };
    this.nextConnectionId += 1;
    const connection = new KafkaConnection(socket, info, this.options, this.limits, this.stats);
    this.stats.connectionsAccepted += 1;
    this.stats.connectionsOpen += 1;
    this.connections.set(connection, new Promise((resolve) => {
      socket.once('close', () => {
        connection.close('peer-closed');
        this.connections.delete(connection);
        this.stats.connectionsOpen -= 1;
        assert(this.stats.connectionsOpen >= 0, 'open connections never go below zero');
        resolve();
      });
    }));
  }
}

/** One request read and not yet answered; `settled` once its dispatcher call resolved. */
interface Pending {
  settled: boolean;
  answer: Buffer | null;
}

class KafkaConnection {
  private chunks: Buffer[] = [];
  private bufferedBytes = 0;
  /** Requests in request order; answers leave from the front only. */
  private readonly pending: Pending[] = [];
  private idleTimer: NodeJS.Timeout;
  private frameTimer: NodeJS.Timeout | null = null;
  private closed = false;
  private peerEnded = false;

  constructor(
    private readonly socket: net.Socket,
    private readonly info: ConnectionInfo,
    private readonly options: KafkaServerOptions,
    private readonly limits: KafkaListenerLimits,
    private readonly stats: KafkaServerStats,
  ) {
    this.idleTimer = setTimeout(() => { this.onIdle(); }, limits.idleTimeoutMs);
    socket.on('data', (chunk: Buffer) => { this.onData(chunk); });
    socket.on('drain', () => { this.readFrames(); });
    socket.on('end', () => {
      // The client sent all it will; answer what is in flight, then close.
      this.peerEnded = true;
      this.maybeFinish();
    });
    // 'close' follows every error; the server's close handler does the bookkeeping.
    socket.on('error', () => undefined);
  }

  close(reason: CloseReason): void {
    if (this.closed) return;
    this.closed = true;
    this.stats.countClose(reason);
    clearTimeout(this.idleTimer);
    if (this.frameTimer !== null) clearTimeout(this.frameTimer);
    this.chunks = [];
    this.bufferedBytes = 0;
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.closed) return;
    this.idleTimer.refresh();
    this.chunks.push(chunk);
    this.bufferedBytes += chunk.length;
    this.readFrames();
  }

  /** Reads whole frames while the in-flight and write-buffer bounds allow; pauses the socket when they do not. */
  private readFrames(): void {
    while (!this.closed && !this.blocked() && this.bufferedBytes >= SIZE_PREFIX_BYTES) {
      const size = this.peekSize();
      if (size < REQUEST_HEAD_BYTES) {
        this.refuse('bad-size', `a request size of ${size} bytes cannot hold a request header`);
        return;
      }
      if (size > this.limits.requestBytesMax) {
        this.refuse('request-too-large', `a request of ${size} bytes is over requestBytesMax ${this.limits.requestBytesMax}`);
        return;
      }
      if (this.bufferedBytes < SIZE_PREFIX_BYTES + size) break;
      this.dispatch(this.take(SIZE_PREFIX_BYTES + size).subarray(SIZE_PREFIX_BYTES));
    }
    if (this.closed) return;
    const blocked = this.blocked();
    if (blocked) this.socket.pause();
    else this.socket.resume();
    this.watchPartialFrame(!blocked && this.bufferedBytes > 0);
  }

  /** A frame is started and incomplete while we wait for its bytes: it must finish within frameReceiveTimeoutMs. */
  private watchPartialFrame(waiting: boolean): void {
    if (!waiting) {
      if (this.frameTimer !== null) clearTimeout(this.frameTimer);
      this.frameTimer = null;
      return;
    }
    this.frameTimer ??= setTimeout(() => {
      this.refuse('slow-frame', `a request frame did not arrive whole within ${this.limits.frameReceiveTimeoutMs} ms`);
    }, this.limits.frameReceiveTimeoutMs);
  }

  private blocked(): boolean {
    return this.pending.length >= this.limits.inFlightRequestsPerConnectionMax || this.socket.writableLength > this.limits.pendingWriteBytesMax;
  }

  private dispatch(frame: Buffer): void {
    assert(frame.length >= REQUEST_HEAD_BYTES, 'a dispatched frame holds a request header');
    // A frame that completes the one being received ends its receive clock.
    if (this.frameTimer !== null) clearTimeout(this.frameTimer);
    this.frameTimer = null;
    const head = readRequestHead(frame);
    this.stats.countRequest(head.apiKey);
    const entry: Pending = { settled: false, answer: null };
    this.pending.push(entry);
    let answer: Promise<Buffer | null>;
    try {
      answer = this.options.dispatcher.handle(frame, this.info);
    } catch (error) {
      answer = Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    answer.then(
      (bytes) => {
        entry.settled = true;
        entry.answer = bytes;
        this.flush();
      },
      (error: unknown) => {
        if (this.closed) return;
        const fields = { connection: this.info, apiKey: head.apiKey, apiVersion: head.apiVersion, correlationId: head.correlationId, err: error };
        // An expected refusal (a DriftwoodError) is a warning; anything else is a handler bug.
        if (isDriftwoodError(error)) this.options.log.warn(fields, 'Kafka request refused: closing the connection');
        else this.options.log.error(fields, 'Kafka request handler failed: closing the connection');
        this.close('dispatcher-error');
      },
    );
  }

  /** Writes the answers at the front that are ready, in request order. */
  private flush(): void {
    if (this.closed) return;
    let wrote = false;
    for (let head = this.pending[0]; head?.settled === true; head = this.pending[0]) {
      this.pending.shift();
      if (head.answer !== null) this.write(head.answer);
      wrote = true;
    }
    if (wrote) this.idleTimer.refresh();
    this.readFrames();
    this.maybeFinish();
  }

  private write(answer: Buffer): void {
    assert(answer.length <= INT32_MAX, 'an answer fits an int32 size');
    const prefix = Buffer.allocUnsafe(SIZE_PREFIX_BYTES);
    prefix.writeInt32BE(answer.length, 0);
    // Two writes under cork: one segment on the wire without copying a large answer.
    this.socket.cork();
    this.socket.write(prefix);
    this.socket.write(answer);
    this.socket.uncork();
  }

  private maybeFinish(): void {
    if (this.closed || !this.peerEnded || this.pending.length > 0) return;
    // What is buffered is a partial frame that will never complete.
    this.socket.end();
    this.close('peer-closed');
  }

  private onIdle(): void {
    if (this.closed) return;
    // A long poll in flight or answers still going out are activity, not idleness.
    if (this.pending.length > 0 || this.socket.writableLength > 0) {
      this.idleTimer.refresh();
      return;
    }
    this.close('idle');
  }

  private refuse(reason: CloseReason, message: string): void {
    this.options.log.warn({ connection: this.info, reason }, `Kafka connection closed: ${message}`);
    this.close(reason);
  }

  private peekSize(): number {
    const first = this.chunks[0];
    assert(first !== undefined, 'a size is read only from buffered bytes');
    if (first.length >= SIZE_PREFIX_BYTES) return first.readInt32BE(0);
    return this.take(SIZE_PREFIX_BYTES, false).readInt32BE(0);
  }

  /** The first `bytes` buffered bytes (consumed unless `consume` is false); copies only when they span chunks. */
  private take(bytes: number, consume = true): Buffer {
    assert(bytes <= this.bufferedBytes, 'take only what is buffered');
    let first = this.chunks[0];
    assert(first !== undefined, 'buffered bytes live in chunks');
    if (first.length < bytes) {
      first = Buffer.concat(this.chunks, this.bufferedBytes);
      this.chunks = [first];
    }
    const taken = first.subarray(0, bytes);
    if (!consume) return taken;
    if (first.length === bytes) this.chunks.shift();
    else this.chunks[0] = first.subarray(bytes);
    this.bufferedBytes -= bytes;
    return taken;
  }
}
