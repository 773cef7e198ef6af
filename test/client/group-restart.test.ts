// A group member whose coordinator restarts (issue 9): a node that is starting answers every
// request NOT_CONTROLLER, and the member took that heartbeat answer for a refusal for good:
// it stopped heartbeating and every poll() raised it, so the group stopped reading while its
// commits (of nothing) went on. Here one fake node on loopback plays the cluster and turns
// "starting" for a moment: the member must ride it out and read what is produced after.
import { once } from 'node:events';
import { createServer, type Http2ServerRequest, type Http2ServerResponse } from 'node:http2';
import type { AddressInfo } from 'node:net';
import t from 'tap';
import { Consumer, type ConsumerRecord } from '../../src/client/consumer.js';
import type { DriftwoodError } from '../../storage/errors.js';
import { buildBatch } from '../../storage/record-batch.js';
import { waitFor } from '../helpers/processes.js';

const TOPIC = 't';
const GROUP = 'g';
/** Short, so that several heartbeats land while the node is starting. */
const HEARTBEAT_INTERVAL_MS = 50;
const STARTING_MS = 1500;

/** One node that is broker, partition leader and group coordinator, and can act as starting. */
class FakeNode {
  readonly values: string[] = [];
  starting = false;
  /** Requests answered NOT_CONTROLLER while starting, by path kind. */
  readonly refused = new Map<string, number>();
  private readonly server = createServer((request, response) => { this.handle(request, response); });
  address = '';

  async listen(): Promise<void> {
    this.server.listen(0, '127.0.0.1');
    await once(this.server, 'listening');
    this.address = `127.0.0.1:${(this.server.address() as AddressInfo).port}`;
  }

  async close(): Promise<void> {
    const closed = once(this.server, 'close');
    this.server.close();
    await closed;
  }

  private handle(request: Http2ServerRequest, response: Http2ServerResponse): void {
    const chunks: Buffer[] = [];
    request.on('data', (chunk: Buffer) => chunks.push(chunk));
    request.on('end', () => {
      const url = new URL(request.url, 'http://fake');
      const body = chunks.length === 0 ? null : JSON.parse(Buffer.concat(chunks).toString('utf8')) as { memberEpoch?: number };
      if (this.starting) {
        const kind = url.pathname.split('/').slice(-1)[0] ?? '';
        this.refused.set(kind, (this.refused.get(kind) ?? 0) + 1);
        // What src/broker/node-broker.ts answers on every route until the node is up.
        json(response, 421, { error: 'NOT_CONTROLLER', message: 'This broker is not the controller: node 1 is starting; retry' });
        return;
      }
      this.route(url, body, response);
    });
  }

  private route(url: URL, body: { memberEpoch?: number } | null, response: Http2ServerResponse): void {
    const path = url.pathname;
    if (path === `/v1/topics/${TOPIC}/partitions/0/records`) {
      this.records(Number(url.searchParams.get('offset')), response);
      return;
    }
    const answer = this.answer(path, body);
    if (answer === undefined) json(response, 404, { error: 'INVALID_REQUEST', message: `no route ${path}` });
    else json(response, 200, answer);
  }

  private answer(path: string, body: { memberEpoch?: number } | null): unknown {
    if (path === '/v1/brokers') return [{ id: 1, address: this.address, state: 'alive' }];
    if (path === `/v1/topics/${TOPIC}`) return { name: TOPIC, id: 'fake', partitions: [{ partition: 0, leader: 1, leaderEpoch: 0, replicas: [1], isr: [1] }] };
    if (path === `/v1/groups/${GROUP}/coordinator`) return { group: GROUP, coordinatorId: 1, coordinatorAddress: this.address };
    if (path === `/v1/groups/${GROUP}/heartbeat`) {
      const leaving = body?.memberEpoch === -1;
      return { memberId: 'm1', memberEpoch: leaving ? -1 : 1, heartbeatIntervalMs: HEARTBEAT_INTERVAL_MS, assignment: leaving ? [] : [{ topic: TOPIC, partitions: [0] }] };
    }
    if (path === `/v1/groups/${GROUP}/offsets`) return { group: GROUP, offsets: [] };
    if (path === `/v1/topics/${TOPIC}/partitions/0/offsets`) return { offset: 0, logStartOffset: 0, highWatermark: this.values.length };
    return undefined;
  }

  private records(offset: number, response: Http2ServerResponse): void {
    const headers = { 'x-driftwood-high-watermark': String(this.values.length), 'x-driftwood-leader-epoch': '0' };
    if (offset >= this.values.length) {
      // A short long poll, so that an idle member does not spin.
      setTimeout(() => { response.writeHead(200, headers); response.end(); }, 50);
      return;
    }
    const batch = buildBatch(this.values.slice(offset).map((value) => ({ value: Buffer.from(value), timestampMs: 0 })), { baseOffset: offset });
    response.writeHead(200, { ...headers, 'content-type': 'application/octet-stream' });
    response.end(batch);
  }
}

function json(response: Http2ServerResponse, status: number, body: unknown): void {
  response.writeHead(status, { 'content-type': 'application/json' });
  response.end(JSON.stringify(body));
}

void t.test('a member rides out its coordinator starting up (NOT_CONTROLLER) and reads on', { timeout: 30_000 }, async (t) => {
  const node = new FakeNode();
  await node.listen();
  t.teardown(() => node.close());
  const errors: DriftwoodError[] = [];
  const consumer = new Consumer({
    bootstrap: [node.address],
    groupId: GROUP,
    autoCommit: false,
    fetchMaxWaitMs: 50,
    sessionTimeoutMs: 10_000,
    requestTimeoutMs: 2000,
    retryBackoffMs: 20,
    retryBackoffMsMax: 200,
    onError: (error) => { errors.push(error); },
  });
  t.teardown(() => consumer.close());
  consumer.subscribe([TOPIC]);
  const read: ConsumerRecord[] = [];
  const pollErrors: DriftwoodError[] = [];
  const pollUntil = async (what: string, count: number): Promise<void> => {
    await waitFor(what, 10_000, async () => {
      try {
        read.push(...await consumer.poll(100));
      } catch (error) {
        pollErrors.push(error as DriftwoodError);
      }
      return read.length >= count ? true : undefined;
    });
  };

  node.values.push('before');
  await pollUntil('the record produced before the restart', 1);

  node.starting = true;
  const startedMs = Date.now();
  // poll() through the restart, as an application does.
  while (Date.now() - startedMs < STARTING_MS) {
    try {
      read.push(...await consumer.poll(100));
    } catch (error) {
      pollErrors.push(error as DriftwoodError);
    }
  }
  node.starting = false;
  t.ok((node.refused.get('heartbeat') ?? 0) > 0, `heartbeats met the starting node (refused: ${JSON.stringify(Object.fromEntries(node.refused))})`);

  node.values.push('after');
  await pollUntil('the record produced after the restart', 2);
  t.same(read.map((r) => [r.offset, r.value?.toString('utf8')]), [[0, 'before'], [1, 'after']], 'each record once, in order');
  t.same(pollErrors.map((e) => e.code), [], 'poll() raised nothing: NOT_CONTROLLER is not the group refusing the member');
  t.ok(errors.some((e) => e.code === 'NOT_CONTROLLER'), 'the member reported the refusals to onError');
  t.equal(consumer.groupMetadata().memberId, 'm1', 'still the same member');
});
