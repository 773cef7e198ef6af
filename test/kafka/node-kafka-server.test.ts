// The Kafka-protocol listener's framing and limits, against a fake dispatcher on loopback.
import net from 'node:net';
import t from 'tap';
import { notStartedDispatcher, readRequestHead, type ConnectionInfo, type KafkaDispatcher } from '../../src/kafka/dispatcher.js';
import { defaultKafkaListenerLimits, type KafkaListenerLimits } from '../../src/kafka/limits.js';
import { KafkaServer, type KafkaServerLog } from '../../src/kafka/node-kafka-server.js';

const TEST_TIMEOUT_MS = 20_000;

interface Teardown { teardown: (fn: () => unknown) => void }

/** A request frame with its size prefix: api_key, api_version, correlation_id, then `payload`. */
function request(apiKey: number, correlationId: number, payload: Buffer = Buffer.alloc(0)): Buffer {
  const bytes = Buffer.alloc(4 + 8 + payload.length);
  bytes.writeInt32BE(8 + payload.length, 0);
  bytes.writeInt16BE(apiKey, 4);
  bytes.writeInt16BE(1, 6);
  bytes.writeInt32BE(correlationId, 8);
  payload.copy(bytes, 12);
  return bytes;
}

/** The fake's answer: the correlation id and the request's payload, echoed. */
function echo(frame: Buffer): Buffer {
  return Buffer.concat([frame.subarray(4, 8), frame.subarray(8)]);
}

interface Held {
  readonly frame: Buffer;
  readonly connection: ConnectionInfo;
  resolve(answer: Buffer | null): void;
  reject(error: Error): void;
}

/** A dispatcher that holds every request until the test answers it. */
class HoldingDispatcher implements KafkaDispatcher {
  readonly held: Held[] = [];
  private waiters: Array<() => void> = [];

  handle(frame: Buffer, connection: ConnectionInfo): Promise<Buffer | null> {
    return new Promise((resolve, reject) => {
      this.held.push({ frame, connection, resolve, reject });
      for (const wake of this.waiters.splice(0)) wake();
    });
  }

  async waitFor(count: number): Promise<void> {
    while (this.held.length < count) await new Promise<void>((resolve) => { this.waiters.push(resolve); });
  }
}

const echoDispatcher: KafkaDispatcher = { handle: (frame) => Promise.resolve(echo(frame)) };

class CapturingLog implements KafkaServerLog {
  readonly lines: Array<{ level: string; message: string; fields: object }> = [];
  warn(fields: object, message: string): void { this.lines.push({ level: 'warn', message, fields }); }
  error(fields: object, message: string): void { this.lines.push({ level: 'error', message, fields }); }
}

/** A client connection that collects answers (size-prefixed) and notes when the server closes it. */
class Client {
  readonly answers: Buffer[] = [];
  readonly closed: Promise<void>;
  isClosed = false;
  private pending = Buffer.alloc(0);
  private waiters: Array<() => void> = [];

  private constructor(readonly socket: net.Socket) {
    socket.on('data', (chunk: Buffer) => {
      this.pending = Buffer.concat([this.pending, chunk]);
      while (this.pending.length >= 4 && this.pending.length >= 4 + this.pending.readInt32BE(0)) {
        const size = this.pending.readInt32BE(0);
        this.answers.push(this.pending.subarray(4, 4 + size));
        this.pending = this.pending.subarray(4 + size);
      }
      this.wake();
    });
    socket.on('error', () => undefined);
    this.closed = new Promise((resolve) => {
      socket.once('close', () => {
        this.isClosed = true;
        this.wake();
        resolve();
      });
    });
  }

  static async connect(port: number): Promise<Client> {
    const socket = net.connect({ host: '127.0.0.1', port });
    await new Promise<void>((resolve, reject) => { socket.once('connect', resolve).once('error', reject); });
    return new Client(socket);
  }

  write(bytes: Buffer): Promise<void> {
    return new Promise((resolve, reject) => { this.socket.write(bytes, (error) => { if (error) reject(error); else resolve(); }); });
  }

  async waitForAnswers(count: number): Promise<number[]> {
    while (this.answers.length < count && !this.isClosed) await new Promise<void>((resolve) => { this.waiters.push(resolve); });
    return this.answers.map((answer) => answer.readInt32BE(0));
  }

  private wake(): void {
    for (const wake of this.waiters.splice(0)) wake();
  }
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

async function serve(t: Teardown, dispatcher: KafkaDispatcher, limits: Partial<KafkaListenerLimits> = {}, log: KafkaServerLog = new CapturingLog()): Promise<KafkaServer> {
  const server = await KafkaServer.listen({ host: '127.0.0.1', port: 0, dispatcher, log, limits: { ...defaultKafkaListenerLimits, ...limits } });
  t.teardown(() => server.close());
  return server;
}

async function connect(t: Teardown, server: KafkaServer): Promise<Client> {
  const client = await Client.connect(server.address.port);
  t.teardown(() => { client.socket.destroy(); });
  return client;
}

void t.test('coalesced frames and a frame split byte by byte are read whole, in order', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const seen: Buffer[] = [];
  const server = await serve(t, { handle: (frame) => { seen.push(Buffer.from(frame)); return Promise.resolve(echo(frame)); } });
  const client = await connect(t, server);
  await client.write(Buffer.concat([request(3, 1, Buffer.from('a')), request(18, 2), request(0, 3, Buffer.from('ccc'))]));
  t.same(await client.waitForAnswers(3), [1, 2, 3]);
  const split = request(1, 4, Buffer.from('split payload'));
  for (const byte of split) {
    await client.write(Buffer.from([byte]));
  }
  t.same(await client.waitForAnswers(4), [1, 2, 3, 4]);
  t.same(seen.map((frame) => readRequestHead(frame).apiKey), [3, 18, 0, 1]);
  t.equal(seen[3]?.subarray(8).toString(), 'split payload', 'the dispatcher gets the frame without its size prefix');
  t.equal(client.answers[3]?.subarray(4).toString(), 'split payload');
  t.same(Object.fromEntries(server.stats.requestsByApiKey), { 0: 1, 1: 1, 3: 1, 18: 1 });
  t.notOk(client.isClosed);
});

void t.test('answers go out in request order whatever order they complete in; null answers nothing', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dispatcher = new HoldingDispatcher();
  const server = await serve(t, dispatcher);
  const client = await connect(t, server);
  await client.write(Buffer.concat([request(0, 10), request(0, 11), request(0, 12), request(0, 13)]));
  await dispatcher.waitFor(4);
  const [first, second, third, fourth] = dispatcher.held;
  if (first === undefined || second === undefined || third === undefined || fourth === undefined) throw new Error('four requests held');
  fourth.resolve(echo(fourth.frame));
  third.resolve(null);
  second.resolve(echo(second.frame));
  await sleep(100);
  t.same(client.answers, [], 'nothing leaves before the first answer');
  first.resolve(echo(first.frame));
  t.same(await client.waitForAnswers(3), [10, 11, 13], 'in order, the null answer left out');
  await sleep(50);
  t.equal(client.answers.length, 3);
  t.equal(first.connection.id, fourth.connection.id);
});

void t.test('a size prefix over requestBytesMax closes the connection before reading the body', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dispatcher = new HoldingDispatcher();
  const server = await serve(t, dispatcher, { requestBytesMax: 1024 });
  const client = await connect(t, server);
  await client.write(request(0, 1, Buffer.alloc(1024 - 8)));
  await dispatcher.waitFor(1);
  const header = Buffer.alloc(4);
  header.writeInt32BE(1025, 0);
  await client.write(header);
  await client.closed;
  t.equal(dispatcher.held.length, 1, 'the request at the limit went through, the one over it did not');
  t.equal(server.stats.closesByReason.get('request-too-large'), 1);
});

void t.test('garbage sizes (negative, too small for a header) close the connection', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dispatcher = new HoldingDispatcher();
  const server = await serve(t, dispatcher);
  for (const bytes of [Buffer.from([0xff, 0xff, 0xff, 0xff]), Buffer.from([0x80, 0, 0, 0]), Buffer.from([0, 0, 0, 3, 1, 2, 3]), Buffer.from('GET / HTTP/1.1\r\n\r\n')]) {
    const client = await connect(t, server);
    await client.write(bytes);
    await client.closed;
  }
  t.equal(dispatcher.held.length, 0, 'the dispatcher never saw garbage');
  // 'GET ' is a size of 1,195,725,856 bytes: over the limit.
  t.equal(server.stats.closesByReason.get('bad-size'), 3);
  t.equal(server.stats.closesByReason.get('request-too-large'), 1);
  const client = await connect(t, server);
  await client.write(request(0, 1));
  await dispatcher.waitFor(1);
  t.pass('the listener still serves');
});

void t.test('connections past connectionsMax are closed at once; the others go on', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const server = await serve(t, echoDispatcher, { connectionsMax: 2 });
  const a = await connect(t, server);
  const b = await connect(t, server);
  const c = await connect(t, server);
  await c.closed;
  await a.write(request(0, 1));
  await b.write(request(0, 2));
  t.same(await a.waitForAnswers(1), [1]);
  t.same(await b.waitForAnswers(1), [2]);
  t.equal(server.stats.connectionsRefused, 1);
  t.equal(server.stats.connectionsOpen, 2);
  a.socket.destroy();
  await a.closed;
  await sleep(50);
  const d = await connect(t, server);
  await d.write(request(0, 4));
  t.same(await d.waitForAnswers(1), [4], 'a freed slot takes a new connection');
});

void t.test('at inFlightRequestsPerConnectionMax the socket is not read until answers go out', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dispatcher = new HoldingDispatcher();
  const server = await serve(t, dispatcher, { inFlightRequestsPerConnectionMax: 2 });
  const client = await connect(t, server);
  await client.write(Buffer.concat([1, 2, 3, 4, 5].map((id) => request(0, id))));
  await dispatcher.waitFor(2);
  await sleep(150);
  t.equal(dispatcher.held.length, 2, 'two in flight, the rest wait unread');
  dispatcher.held[1]?.resolve(echo(dispatcher.held[1].frame));
  await sleep(100);
  t.equal(dispatcher.held.length, 2, 'an answer held back behind the first frees no slot');
  dispatcher.held[0]?.resolve(echo(dispatcher.held[0].frame));
  await dispatcher.waitFor(4);
  t.equal(dispatcher.held.length, 4);
  for (const held of dispatcher.held.slice(2)) held.resolve(echo(held.frame));
  await dispatcher.waitFor(5);
  dispatcher.held[4]?.resolve(echo(dispatcher.held[4].frame));
  t.same(await client.waitForAnswers(5), [1, 2, 3, 4, 5]);
  t.notOk(client.isClosed, 'backpressure is not an error');
});

void t.test('an idle connection is closed; one with a request in flight is not', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dispatcher = new HoldingDispatcher();
  const server = await serve(t, dispatcher, { idleTimeoutMs: 200 });
  const idle = await connect(t, server);
  const busy = await connect(t, server);
  await busy.write(request(0, 7));
  await dispatcher.waitFor(1);
  const started = Date.now();
  await idle.closed;
  t.ok(Date.now() - started < 2000, 'closed after about idleTimeoutMs');
  await sleep(400);
  t.notOk(busy.isClosed, 'a long request in flight keeps the connection');
  dispatcher.held[0]?.resolve(echo(dispatcher.held[0].frame));
  t.same(await busy.waitForAnswers(1), [7]);
  await busy.closed;
  t.equal(server.stats.closesByReason.get('idle'), 2, 'idle again after its answer');
});

void t.test('a frame that does not arrive whole within frameReceiveTimeoutMs closes the connection', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dispatcher = new HoldingDispatcher();
  const server = await serve(t, dispatcher, { frameReceiveTimeoutMs: 300, idleTimeoutMs: 60_000 });
  const client = await connect(t, server);
  const frame = request(0, 1, Buffer.alloc(100));
  // Trickled: each byte resets the idle clock, not the frame's.
  const trickle = (async () => {
    for (let i = 0; i < 40 && !client.isClosed; i += 1) {
      await client.write(frame.subarray(i, i + 1)).catch(() => undefined);
      await sleep(25);
    }
  })();
  await client.closed;
  await trickle;
  t.equal(dispatcher.held.length, 0);
  t.equal(server.stats.closesByReason.get('slow-frame'), 1);
});

void t.test('a dispatcher that fails closes only that connection, logged; the process goes on', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const log = new CapturingLog();
  const server = await serve(t, {
    handle: (frame) => {
      const { apiKey } = readRequestHead(frame);
      if (apiKey === 66) throw new Error('handler bug (thrown)');
      if (apiKey === 67) return Promise.reject(new Error('handler bug (rejected)'));
      return Promise.resolve(echo(frame));
    },
  }, {}, log);
  const bad = await connect(t, server);
  const badAsync = await connect(t, server);
  const good = await connect(t, server);
  await good.write(request(0, 1));
  t.same(await good.waitForAnswers(1), [1]);
  await bad.write(request(66, 2));
  await badAsync.write(request(67, 3));
  await bad.closed;
  await badAsync.closed;
  await good.write(request(0, 4));
  t.same(await good.waitForAnswers(2), [1, 4]);
  t.notOk(good.isClosed);
  t.same(log.lines.filter((line) => line.level === 'error').map((line) => line.message), ['Kafka request handler failed: closing the connection', 'Kafka request handler failed: closing the connection']);
  t.equal(server.stats.closesByReason.get('dispatcher-error'), 2);
});

void t.test('the dispatcher of a starting broker closes the connection for every request', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const log = new CapturingLog();
  const server = await serve(t, notStartedDispatcher, {}, log);
  const client = await connect(t, server);
  await client.write(request(18, 1));
  await client.closed;
  t.same(client.answers, []);
  t.match(log.lines[0], { level: 'warn', fields: { apiKey: 18 } });
});

void t.test('close() closes every socket, with requests in flight, and refuses new ones', { timeout: TEST_TIMEOUT_MS }, async (t) => {
  const dispatcher = new HoldingDispatcher();
  const server = await KafkaServer.listen({ host: '127.0.0.1', port: 0, dispatcher, log: new CapturingLog() });
  const port = server.address.port;
  const a = await Client.connect(port);
  const b = await Client.connect(port);
  await a.write(request(0, 1));
  await dispatcher.waitFor(1);
  await server.close();
  await Promise.all([a.closed, b.closed]);
  dispatcher.held[0]?.resolve(echo(dispatcher.held[0].frame));
  t.equal(server.stats.connectionsOpen, 0);
  t.equal(server.stats.closesByReason.get('shutdown'), 2);
  await t.rejects(Client.connect(port), 'nothing listens any more');
});
