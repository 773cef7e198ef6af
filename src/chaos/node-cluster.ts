// The chaos run's cluster: real `driftwood start` processes on loopback, each on its own
// address (node k on 127.0.0.(k+1)), reaching each other only through one LinkProxy per
// directed link, so that a node can be killed, paused or cut off and brought back.
//
// Clients (the workload's producers, consumers and admin) talk to the nodes directly at
// the addresses the nodes register, not through the proxies: a node advertises its listen
// address and there is no separate advertised address to point at a proxy. So a cut node is
// still reachable by clients; it just cannot reach its peers, nor they it. That is the
// harsher case for the checks: a cut leader keeps taking produce requests and answering
// metadata with stale beliefs until its session with the controller runs out.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { join } from 'node:path';
import { BIN } from '../bench/cluster.js';
import { freePort } from '../node-free-port.js';
import { LinkProxy } from './node-proxy.js';

export type NodeState = 'running' | 'killed' | 'paused';

export interface ChaosNode {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly dataDir: string;
  child: ChildProcess | null;
  state: NodeState;
  cut: boolean;
  /** The last lines the node wrote to stderr, for a failure report. */
  readonly stderrTail: string[];
}

/** An exit nobody asked for: a node that crashed by itself is a finding of the run. */
export interface UnexpectedExit {
  readonly id: number;
  readonly code: number | null;
  readonly signal: string | null;
  readonly stderrTail: readonly string[];
}

const STDERR_LINES_MAX = 40;
/** How long a node asked to stop (SIGTERM) may take before it is killed. */
const STOP_WAIT_MS = 15_000;

export function nodeHost(id: number): string {
  assert.ok(Number.isInteger(id) && id >= 1 && id <= 250, 'node ids fit in a loopback address');
  return `127.0.0.${id + 1}`;
}

export class ChaosCluster {
  readonly unexpectedExits: UnexpectedExit[] = [];
  private readonly proxies = new Map<string, LinkProxy>();
  /** node id -> (peer id -> the proxy port that node uses for that peer). */
  private readonly proxyPorts = new Map<number, Map<number, number>>();

  private constructor(readonly nodes: readonly ChaosNode[], private readonly logLevel: string) {}

  /** Starts `size` nodes with data under `dir`; the caller stops them with destroy(). */
  static async start(size: number, dir: string, logLevel = 'warn'): Promise<ChaosCluster> {
    assert.ok(size >= 3 && size <= 9, 'a chaos cluster has 3 to 9 nodes');
    const nodes: ChaosNode[] = [];
    for (let id = 1; id <= size; id += 1) {
      nodes.push({ id, host: nodeHost(id), port: await freePort(), dataDir: join(dir, `n${id}`), child: null, state: 'killed', cut: false, stderrTail: [] });
    }
    const cluster = new ChaosCluster(nodes, logLevel);
    await cluster.startProxies();
    for (const node of nodes) cluster.spawn(node);
    return cluster;
  }

  /** Client addresses: each node's own listen address. */
  get bootstrap(): string[] {
    return this.nodes.map((node) => `${node.host}:${node.port}`);
  }

  node(id: number): ChaosNode {
    const node = this.nodes.find((n) => n.id === id);
    assert.ok(node !== undefined, `node ${id} is in the cluster`);
    return node;
  }

  /** Node `id`'s peers list: itself at its own address, every other node at its proxy for that link. */
  peersOf(id: number): string {
    const ports = this.proxyPorts.get(id);
    assert.ok(ports !== undefined, `node ${id} has proxies`);
    return this.nodes.map((peer) => (peer.id === id ? `${peer.id}@${peer.host}:${peer.port}` : `${peer.id}@${peer.host}:${ports.get(peer.id) ?? 0}`)).join(',');
  }

  private async startProxies(): Promise<void> {
    for (const from of this.nodes) {
      const ports = new Map<number, number>();
      for (const to of this.nodes) {
        if (to.id === from.id) continue;
        const port = await freePort();
        const proxy = new LinkProxy({ listenHost: to.host, listenPort: port, targetHost: to.host, targetPort: to.port, localHost: from.host });
        await proxy.listen();
        this.proxies.set(`${from.id}->${to.id}`, proxy);
        ports.set(to.id, port);
      }
      this.proxyPorts.set(from.id, ports);
    }
  }

  private spawn(node: ChaosNode): void {
    assert.equal(node.child, null, `node ${node.id} is not running when it is started`);
    const args = [BIN, 'start', '--id', String(node.id), '--peers', this.peersOf(node.id), '--data', node.dataDir, '--log-level', this.logLevel];
    const child = spawn(process.execPath, args, { stdio: ['ignore', 'ignore', 'pipe'] });
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (chunk: string) => {
      for (const line of chunk.split('\n')) if (line.length > 0) node.stderrTail.push(line.slice(0, 2000));
      node.stderrTail.splice(0, Math.max(0, node.stderrTail.length - STDERR_LINES_MAX));
    });
    child.once('exit', (code, signal) => {
      if (node.child !== child) return;
      node.child = null;
      node.state = 'killed';
      this.unexpectedExits.push({ id: node.id, code, signal, stderrTail: [...node.stderrTail] });
    });
    node.child = child;
    node.state = 'running';
  }

  /** kill -9; resolves once the process is gone. */
  async kill(id: number): Promise<void> {
    const node = this.node(id);
    const child = node.child;
    if (child === null) return;
    node.child = null;
    node.state = 'killed';
    await signalAndWait(child, 'SIGKILL', Infinity);
  }

  restart(id: number): void {
    const node = this.node(id);
    if (node.child !== null) return;
    this.spawn(node);
  }

  pause(id: number): void {
    const node = this.node(id);
    if (node.child === null || node.state !== 'running') return;
    node.child.kill('SIGSTOP');
    node.state = 'paused';
  }

  resume(id: number): void {
    const node = this.node(id);
    if (node.child === null || node.state !== 'paused') return;
    node.child.kill('SIGCONT');
    node.state = 'running';
  }

  /** Cuts node `id` off from every peer, both directions. */
  cut(id: number): void {
    for (const [link, proxy] of this.proxies) if (linkTouches(link, id)) proxy.cut();
    this.node(id).cut = true;
  }

  heal(id: number): void {
    for (const [link, proxy] of this.proxies) if (linkTouches(link, id)) proxy.heal();
    this.node(id).cut = false;
  }

  /** Heals every cut, wakes every paused node and starts every stopped one. */
  reviveAll(): void {
    for (const node of this.nodes) {
      this.heal(node.id);
      this.resume(node.id);
      this.restart(node.id);
    }
  }

  /** Stops every node as an operator would (SIGTERM, SIGKILL after STOP_WAIT_MS): their logs are then complete on disk. */
  async stopAll(): Promise<void> {
    await Promise.all(this.nodes.map(async (node) => {
      const child = node.child;
      if (child === null) return;
      if (node.state === 'paused') child.kill('SIGCONT');
      node.child = null;
      node.state = 'killed';
      await signalAndWait(child, 'SIGTERM', STOP_WAIT_MS);
    }));
  }

  /** Kills every node and closes every proxy; safe to call more than once and on any path. */
  async destroy(): Promise<void> {
    this.killAllNow();
    await Promise.all([...this.proxies.values()].map((proxy) => proxy.close()));
    this.proxies.clear();
  }

  /** Synchronous kill -9 of every node: for process exit handlers, where nothing can be awaited. */
  killAllNow(): void {
    for (const node of this.nodes) {
      const child = node.child;
      node.child = null;
      node.state = 'killed';
      child?.kill('SIGKILL');
    }
  }
}

function linkTouches(link: string, id: number): boolean {
  const [from, to] = link.split('->').map(Number);
  return from === id || to === id;
}

async function signalAndWait(child: ChildProcess, signal: NodeJS.Signals, waitMs: number): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => { child.once('exit', () => { resolve(); }); });
  child.kill(signal);
  if (waitMs === Infinity) {
    await exited;
    return;
  }
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => { timer = setTimeout(() => { resolve('late'); }, waitMs); });
  const outcome = await Promise.race([exited, late]);
  clearTimeout(timer);
  if (outcome === 'late') {
    child.kill('SIGKILL');
    await exited;
  }
}
