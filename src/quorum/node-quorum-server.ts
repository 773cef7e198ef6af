// One node of the Raft quorum as a real process: LevelDB for durable Raft state, an HTTP/2
// (h2c) fastify server for peers' messages and the admin routes, the HTTP/2 transport to the
// peers, and the RaftNode driver with the real clock and randomness. `driftwood quorum` runs
// it on its own, replicating opaque entries; `driftwood start` (src/broker) uses the same
// pieces with the metadata image as the state machine.
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { mkdir } from 'node:fs/promises';
import { join } from 'node:path';
import type { Entry } from '../../raft/index.js';
import { DriftwoodError } from '../../storage/errors.js';
import type { KV } from '../../storage/kv.js';
import { nodeClock } from '../../storage/node-clock.js';
import { openLevelKV } from '../../storage/node-kv.js';
import { nodeRng } from '../../storage/node-rng.js';
import { createHttpApp, type HttpApp } from '../http/node-dual-server.js';
import { bodyLimits } from '../http/limits.js';
import { callerOf } from '../http/security.js';
import type { NodeConfig } from '../config.js';
import type { Logger } from 'pino';
import { peerUrl } from '../peers.js';
import { decodeMessages } from './message-codec.js';
import { HttpTransport, RAFT_MESSAGES_PATH } from './node-http-transport.js';
import { defaultRaftTiming, RaftNode, type StateMachine } from './raft-node.js';

export interface QuorumServerOptions extends NodeConfig {
  readonly timing?: Partial<typeof defaultRaftTiming>;
  /** The node's logger (default: none); fatal errors are written through it. */
  readonly logger?: Logger;
}

/** An entry proposed through the admin route is at most this large. */
const PROPOSAL_BYTES_MAX = 64 * 1024;

/** The bare quorum's state machine: how many entries it applied and a hash chain over them. */
export class AppliedChain implements StateMachine {
  count = 0;
  lastIndex = 0;
  chain = '';

  apply(entry: Entry): void {
    this.count += 1;
    this.lastIndex = entry.index;
    this.chain = createHash('sha1').update(this.chain).update(`${entry.index}/${entry.term}/`).update(entry.data).digest('hex');
  }

  snapshot(): Uint8Array {
    return Buffer.from(JSON.stringify({ count: this.count, lastIndex: this.lastIndex, chain: this.chain }));
  }

  restore(data: Uint8Array): void {
    const state = JSON.parse(Buffer.from(data).toString('utf8')) as { count: number; lastIndex: number; chain: string };
    this.count = state.count;
    this.lastIndex = state.lastIndex;
    this.chain = state.chain;
  }
}

export interface QuorumServer {
  readonly node: RaftNode;
  readonly stateMachine: AppliedChain;
  readonly app: HttpApp;
  close(): Promise<void>;
}

export async function startQuorumServer(options: QuorumServerOptions): Promise<QuorumServer> {
  assert.ok(options.peers.some((peer) => peer.id === options.id), 'the node is in its own peers list');
  const members = membership(options);
  await mkdir(options.dataDir, { recursive: true });
  const kv = await openLevelKV(join(options.dataDir, 'raft'));
  const security = options.security ?? {};
  const app = createHttpApp({ bodyLimitBytes: bodyLimits.adminBodyBytesMax, security, ...(options.logger === undefined ? {} : { logger: options.logger }) });
  const others = new Map(options.peers.filter((peer) => peer.id !== options.id).map((peer) => [peer.id, peerUrl(peer, security.tls !== undefined)]));
  const timing = { ...defaultRaftTiming, ...options.timing };
  const transport = new HttpTransport({ peers: others, caller: callerOf(security), requestTimeoutMs: timing.requestTimeoutMs, queuedMessagesMax: 10_000 });
  const stateMachine = new AppliedChain();
  let node: RaftNode | null = null;
  addRoutes(app, () => node, stateMachine);
  try {
    await app.listen({ host: options.host, port: options.port });
    node = await RaftNode.start(
      { ...timing, id: options.id, ...members },
      { clock: nodeClock, rng: nodeRng, kv, transport, stateMachine },
      {
        onFatal: (error) => {
          // A broken invariant or a failed disk: stop now rather than limp on (TigerStyle).
          if (options.logger === undefined) process.stderr.write(`node ${options.id}: fatal: ${error instanceof Error ? error.stack ?? error.message : String(error)}\n`);
          else options.logger.fatal({ err: error }, 'fatal: the node stops');
          process.exit(70);
        },
      },
    );
  } catch (error) {
    await closeAll(app, transport, kv);
    throw error;
  }
  const started = node;
  return {
    node: started,
    stateMachine,
    app,
    close: async () => {
      started.stop();
      await closeAll(app, transport, kv);
    },
  };
}

/** Voters from the option (all peers by default); every other peer observes. */
function membership(options: QuorumServerOptions): { voters: number[]; observers: number[] } {
  const ids = options.peers.map((peer) => peer.id);
  const voters = options.voters === undefined ? ids : [...options.voters];
  for (const voter of voters) {
    if (!ids.includes(voter)) throw new DriftwoodError('INVALID_CONFIG', `voter ${voter} is not in the peers list`);
  }
  if (voters.length === 0) throw new DriftwoodError('INVALID_CONFIG', 'the voter set is empty');
  return { voters, observers: ids.filter((id) => !voters.includes(id)) };
}

async function closeAll(app: HttpApp, transport: HttpTransport, kv: KV): Promise<void> {
  await transport.close();
  await app.close();
  await kv.close();
}

function addRoutes(app: HttpApp, node: () => RaftNode | null, stateMachine: AppliedChain): void {
  // Raft messages carry entries and snapshot chunks (at most 256 KiB each).
  app.post(RAFT_MESSAGES_PATH, { bodyLimit: bodyLimits.internalBodyBytesMax }, (request, reply) => {
    const target = node();
    if (target === null) throw new DriftwoodError('NOT_CONTROLLER', 'the Raft node is starting');
    for (const message of decodeMessages(request.body)) {
      if (message.to !== target.id) throw new DriftwoodError('INVALID_REQUEST', `message for node ${message.to} reached node ${target.id}`);
      target.receive(message);
    }
    return reply.status(204).send();
  });
  app.get('/v1/raft', () => {
    const target = node();
    if (target === null) throw new DriftwoodError('NOT_CONTROLLER', 'the Raft node is starting');
    return { ...target.status(), applied: { count: stateMachine.count, lastIndex: stateMachine.lastIndex, chain: stateMachine.chain } };
  });
  app.post('/v1/raft/entries', { bodyLimit: bodyLimits.proposalBodyBytesMax }, async (request) => {
    const target = node();
    if (target === null) throw new DriftwoodError('NOT_CONTROLLER', 'the Raft node is starting');
    const body = request.body as { data?: unknown } | null;
    if (typeof body?.data !== 'string' || Buffer.byteLength(body.data) > PROPOSAL_BYTES_MAX) {
      throw new DriftwoodError('INVALID_REQUEST', `the body is {"data": "<string up to ${PROPOSAL_BYTES_MAX} bytes>"}`);
    }
    const index = await target.propose(Buffer.from(body.data));
    return { index };
  });
  app.get('/healthz', () => ({ ok: true }));
}
