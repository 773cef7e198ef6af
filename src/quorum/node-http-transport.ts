// The real Raft transport: HTTP/2 (h2c, or TLS when the cluster uses it) to each peer through one undici client per
// peer, messages batched per peer. While a request to a peer is in flight, new messages for
// it queue and leave together in the next request, so a busy leader sends one request per
// round trip, not one per message. Raft tolerates loss: a failed request is dropped (the core
// retries by itself on the next heartbeat), and a queue past its limit drops its oldest.
import { Client } from 'undici';
import type { Message, NodeId } from '../../raft/index.js';
import { encodeMessages, MESSAGES_PER_REQUEST_MAX } from './message-codec.js';
import type { RaftTransport } from './transport.js';
import { callerHeaders, clientOptions, type CallerSecurity } from '../http/security.js';

export const RAFT_MESSAGES_PATH = '/internal/raft/messages';

export interface HttpTransportOptions {
  /**
   * Peer id -> base URL, e.g. 'http://127.0.0.1:9092' (https:// with TLS). Read at every
   * send, so a map the owner changes (brokers joining, or registering a new address) is
   * followed: a link is opened on first use and replaced when the URL changed.
   */
  readonly peers: ReadonlyMap<NodeId, string>;
  /** The token every request carries and the TLS setting (default: none, cleartext). */
  readonly caller?: CallerSecurity;
  /** A request that has not finished by then is abandoned (its messages are lost). */
  readonly requestTimeoutMs: number;
  /** Messages queued for one peer at most; past it the oldest are dropped. */
  readonly queuedMessagesMax: number;
  readonly onError?: (peer: NodeId, error: unknown) => void;
}

class PeerLink {
  private queue: Message[] = [];
  private inFlight = false;
  private closed = false;
  dropped = 0;

  private readonly headers: Record<string, string>;

  constructor(private readonly peer: NodeId, readonly url: string, private readonly client: Client, private readonly options: HttpTransportOptions) {
    this.headers = { ...callerHeaders(options.caller ?? {}), 'content-type': 'application/json' };
  }

  enqueue(message: Message): void {
    if (this.closed) return;
    this.queue.push(message);
    if (this.queue.length > this.options.queuedMessagesMax) {
      this.queue.shift();
      this.dropped += 1;
    }
    this.flush();
  }

  private flush(): void {
    if (this.inFlight || this.queue.length === 0 || this.closed) return;
    const batch = this.queue.splice(0, MESSAGES_PER_REQUEST_MAX);
    this.inFlight = true;
    this.post(batch)
      .catch((error: unknown) => { this.options.onError?.(this.peer, error); })
      .finally(() => {
        this.inFlight = false;
        this.flush();
      });
  }

  private async post(batch: Message[]): Promise<void> {
    const response = await this.client.request({
      method: 'POST',
      path: RAFT_MESSAGES_PATH,
      headers: this.headers,
      body: encodeMessages(batch),
      headersTimeout: this.options.requestTimeoutMs,
      bodyTimeout: this.options.requestTimeoutMs,
    });
    await response.body.dump();
    if (response.statusCode >= 300) throw new Error(`peer ${this.peer} answered ${response.statusCode}`);
  }

  async close(): Promise<void> {
    this.closed = true;
    this.queue = [];
    await this.client.destroy();
  }
}

export class HttpTransport implements RaftTransport {
  private readonly links = new Map<NodeId, PeerLink>();
  private closed = false;

  constructor(private readonly options: HttpTransportOptions) {}

  send(messages: readonly Message[]): void {
    for (const message of messages) this.link(message.to)?.enqueue(message);
  }

  /** The link to the peer's current URL; undefined for a node of unknown address (its messages are lost, as Raft allows). */
  private link(peer: NodeId): PeerLink | undefined {
    const url = this.options.peers.get(peer);
    const current = this.links.get(peer);
    if (current !== undefined && current.url === url) return current;
    if (current !== undefined) {
      this.links.delete(peer);
      void current.close().catch((error: unknown) => { this.options.onError?.(peer, error); });
    }
    if (url === undefined || this.closed) return undefined;
    const client = new Client(url, clientOptions(this.options.caller ?? {}, { connectTimeout: this.options.requestTimeoutMs, keepAliveTimeout: 60_000 }));
    const link = new PeerLink(peer, url, client, this.options);
    this.links.set(peer, link);
    return link;
  }

  droppedMessages(): number {
    let dropped = 0;
    for (const link of this.links.values()) dropped += link.dropped;
    return dropped;
  }

  async close(): Promise<void> {
    this.closed = true;
    await Promise.all([...this.links.values()].map((link) => link.close()));
  }
}
