// A TCP proxy for one directed link between two chaos nodes (node i reaching node j). Every
// node reaches each peer only through its own proxy for that peer, so cutting a node means
// cutting the proxies of every link that starts or ends at it, in both directions.
//
// A cut behaves like dropped packets, not like a refused connection: sockets open at the cut
// are destroyed (HTTP/2 keeps one connection per peer open for minutes, and a proxy that
// only refused new connections would leave it working), and connections made during the
// cut are accepted and then black-holed (nothing forwarded, nothing answered) until the
// heal destroys them, so the node's own timeouts are what notice the cut.
import assert from 'node:assert/strict';
import { createServer, connect, type Server, type Socket } from 'node:net';

export interface LinkProxyOptions {
  /** Where the proxy listens: the address node `from` has for node `to`. */
  readonly listenHost: string;
  readonly listenPort: number;
  /** Node `to`'s real listen address. */
  readonly targetHost: string;
  readonly targetPort: number;
  /** The source address of connections to the target (node `from`'s own loopback address). */
  readonly localHost: string;
}

/** Connections one link holds at most (forwarded and black-holed together); more are reset. */
const CONNECTIONS_PER_LINK_MAX = 256;

export class LinkProxy {
  private readonly server: Server;
  private readonly open = new Set<Socket>();
  private cutNow = false;
  /** Connections forwarded since the proxy started (for the report's sanity, not for checks). */
  forwarded = 0;

  constructor(private readonly options: LinkProxyOptions) {
    assert.ok(options.listenPort > 0 && options.targetPort > 0, 'a link proxy has real ports');
    this.server = createServer({ pauseOnConnect: true }, (socket) => { this.accept(socket); });
  }

  get isCut(): boolean {
    return this.cutNow;
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(this.options.listenPort, this.options.listenHost, () => {
        this.server.off('error', reject);
        resolve();
      });
    });
  }

  /** Cuts the link: every open connection is destroyed, new ones are held without an answer. */
  cut(): void {
    this.cutNow = true;
    this.destroyAll();
  }

  /** Heals the link: black-holed connections are destroyed, so their owners reconnect through a working link. */
  heal(): void {
    if (!this.cutNow) return;
    this.cutNow = false;
    this.destroyAll();
  }

  async close(): Promise<void> {
    this.destroyAll();
    await new Promise<void>((resolve) => { this.server.close(() => { resolve(); }); });
  }

  private destroyAll(): void {
    for (const socket of this.open) socket.destroy();
    this.open.clear();
  }

  private track(socket: Socket): void {
    this.open.add(socket);
    socket.once('close', () => { this.open.delete(socket); });
    // A reset from either side is the normal end of a link under chaos.
    socket.on('error', () => { socket.destroy(); });
  }

  private accept(client: Socket): void {
    if (this.open.size >= CONNECTIONS_PER_LINK_MAX) {
      client.resetAndDestroy();
      return;
    }
    this.track(client);
    // Held paused: the kernel buffers what the node sends, and nothing comes back.
    if (this.cutNow) return;
    const upstream = connect({ host: this.options.targetHost, port: this.options.targetPort, localAddress: this.options.localHost });
    this.track(upstream);
    this.forwarded += 1;
    const end = (): void => {
      client.destroy();
      upstream.destroy();
    };
    client.once('close', end);
    upstream.once('close', end);
    upstream.once('connect', () => {
      if (client.destroyed) return;
      client.pipe(upstream);
      upstream.pipe(client);
      client.resume();
    });
  }
}
