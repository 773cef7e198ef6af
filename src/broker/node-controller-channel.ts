// The ControllerChannel between processes: a broker's request for the controller goes to the
// node that leads the quorum as POST /internal/controller/<kind> over HTTP/2 (h2c).
import { Client } from 'undici';
import { DriftwoodError } from '../../storage/errors.js';
import { errorFromWire, type ControllerAnswers, type ControllerChannel, type ControllerRequest, type ControllerRequestKind } from './controller-requests.js';

export const CONTROLLER_PATH_PREFIX = '/internal/controller/';

export class HttpControllerChannel implements ControllerChannel {
  private readonly clients: Map<number, Client>;

  constructor(peers: ReadonlyMap<number, string>, private readonly timeoutMs: number) {
    this.clients = new Map([...peers].map(([id, url]) => [id, new Client(url, { allowH2: true, useH2c: true } as Client.Options)]));
  }

  async send<K extends ControllerRequestKind>(to: number, request: ControllerRequest<K>): Promise<ControllerAnswers[K]> {
    const client = this.clients.get(to);
    if (client === undefined) throw new DriftwoodError('NOT_CONTROLLER', `node ${to} is not a peer`, { controllerId: to });
    let response: Awaited<ReturnType<Client['request']>>;
    try {
      response = await client.request({
        method: 'POST',
        path: `${CONTROLLER_PATH_PREFIX}${request.kind}`,
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify(request.body),
        headersTimeout: this.timeoutMs,
        bodyTimeout: this.timeoutMs,
      });
    } catch (error) {
      // Not sent or no answer: the controller may or may not have acted.
      throw new DriftwoodError('REQUEST_TIMED_OUT', `controller node ${to} did not answer: ${error instanceof Error ? error.message : String(error)}`, { controllerId: to });
    }
    const text = await response.body.text();
    const json: unknown = text.length === 0 ? null : JSON.parse(text);
    if (response.statusCode < 300) return json as ControllerAnswers[K];
    throw errorFromWire((json ?? {}) as Record<string, unknown>, `HTTP ${response.statusCode}`);
  }

  async close(): Promise<void> {
    await Promise.all([...this.clients.values()].map((client) => client.destroy()));
  }
}
