// The ReplicaChannel between processes: POST /internal/replica/fetch over HTTP/2 (h2c) to the
// leader's node, JSON in, the binary fetch answer (fetch-codec.ts) out.
import type { PeerClients } from '../http/node-peer-clients.js';
import { decodeFetchResponse } from './fetch-codec.js';
import type { ReplicaChannel, ReplicaFetchRequest, ReplicaFetchResponse } from './fetch-protocol.js';

export const REPLICA_FETCH_PATH = '/internal/replica/fetch';

export class HttpReplicaChannel implements ReplicaChannel {
  /** `slackMs` on top of the request's maxWaitMs before a fetch counts as lost. */
  constructor(private readonly peers: PeerClients, private readonly slackMs: number) {}

  async fetch(leaderId: number, request: ReplicaFetchRequest): Promise<ReplicaFetchResponse> {
    const bytes = await this.peers.binary(leaderId, REPLICA_FETCH_PATH, request, request.maxWaitMs + this.slackMs);
    return decodeFetchResponse(bytes);
  }
}
