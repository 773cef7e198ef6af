// The ControllerChannel between processes: a broker's request for the controller goes to the
// node that leads the quorum as POST /internal/controller/<kind> over HTTP/2 (h2c).
import type { PeerClients } from '../http/node-peer-clients.js';
import type { ControllerAnswers, ControllerChannel, ControllerRequest, ControllerRequestKind } from './controller-requests.js';

export const CONTROLLER_PATH_PREFIX = '/internal/controller/';

export class HttpControllerChannel implements ControllerChannel {
  constructor(private readonly peers: PeerClients, private readonly timeoutMs: number) {}

  send<K extends ControllerRequestKind>(to: number, request: ControllerRequest<K>): Promise<ControllerAnswers[K]> {
    return this.peers.json<ControllerAnswers[K]>(to, 'POST', `${CONTROLLER_PATH_PREFIX}${request.kind}`, request.body, this.timeoutMs);
  }
}
