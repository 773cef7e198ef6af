// The broker agent on a virtual clock against a scripted controller: registration,
// heartbeats, registering again on a stale epoch, and beating at once for a new leader.
import t from 'tap';
import { VirtualClock } from '../../sim/clock.js';
import { BrokerAgent } from '../../src/broker/broker-agent.js';
import { errorFromWire, type ControllerRequest } from '../../src/broker/controller-requests.js';
import { DriftwoodError } from '../../storage/errors.js';

const flush = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function setup(answer: (request: ControllerRequest) => Promise<unknown>): { agent: BrokerAgent; clock: VirtualClock; sent: ControllerRequest[] } {
  const clock = new VirtualClock(0);
  const sent: ControllerRequest[] = [];
  const agent = new BrokerAgent({ brokerId: 4, address: '127.0.0.1:9094', incarnationId: 'inc', heartbeatMs: 250 }, {
    clock,
    appliedIndex: () => 17,
    toController: ((request: ControllerRequest) => {
      sent.push(request);
      return answer(request);
    }) as never,
  });
  return { agent, clock, sent };
}

void t.test('registers, heartbeats every heartbeatMs, registers again when its epoch is stale', async (t) => {
  let stale = false;
  const { agent, clock, sent } = setup((request) => {
    if (request.kind === 'register') return Promise.resolve({ brokerEpoch: 9 });
    if (stale) return Promise.reject(new DriftwoodError('STALE_BROKER_EPOCH', 'x'));
    return Promise.resolve({ fenced: false });
  });
  agent.start();
  clock.advance(0);
  await flush();
  t.equal(agent.epoch, 9);
  t.ok(agent.fenced, 'fenced until a heartbeat says otherwise');
  clock.advance(250);
  await flush();
  t.same(sent.at(-1), { kind: 'heartbeat', body: { brokerId: 4, brokerEpoch: 9, appliedIndex: 17 } });
  t.notOk(agent.fenced);
  stale = true;
  clock.advance(250);
  await flush();
  t.equal(agent.epoch, 0, 'a stale epoch sends it back to registration');
  clock.advance(250);
  await flush();
  t.equal(sent.at(-1)?.kind, 'register');
  agent.stop();
  const count = sent.length;
  clock.advance(5000);
  await flush();
  t.equal(sent.length, count, 'nothing after stop');
});

void t.test('a new leader gets a beat at once, without waiting for a request stuck at the old one', async (t) => {
  const hung: Array<() => void> = [];
  const { agent, clock, sent } = setup((request) => {
    if (request.kind === 'register') return Promise.resolve({ brokerEpoch: 3 });
    if (sent.filter((r) => r.kind === 'heartbeat').length === 1) return new Promise((resolve) => { hung.push(() => { resolve({ fenced: true }); }); });
    return Promise.resolve({ fenced: false });
  });
  agent.start();
  clock.advance(0);
  await flush();
  clock.advance(250);
  await flush();
  t.equal(hung.length, 1, 'the first heartbeat hangs');
  agent.leaderChanged();
  clock.advance(0);
  await flush();
  t.equal(sent.filter((r) => r.kind === 'heartbeat').length, 2, 'the new leader heard at once');
  t.notOk(agent.fenced);
  hung[0]?.();
  await flush();
  t.notOk(agent.fenced, 'the late answer from the old controller is ignored');
  await agent.shutdown();
  t.same(sent.at(-1), { kind: 'shutdown', body: { brokerId: 4, brokerEpoch: 3 } });
});

void t.test('a heartbeat unanswered when the next is due is given up, so one lost message cannot let the session lapse', async (t) => {
  const lost = new Set<number>();
  const { agent, clock, sent } = setup((request) => {
    if (request.kind === 'register') return Promise.resolve({ brokerEpoch: 3 });
    if (lost.has(sent.length)) return new Promise(() => undefined); // never answered
    return Promise.resolve({ fenced: false });
  });
  agent.start();
  clock.advance(0);
  await flush();
  lost.add(2); // the first heartbeat is lost
  for (let i = 0; i < 4; i += 1) {
    clock.advance(250);
    await flush();
  }
  t.same(sent.map((request) => request.kind), ['register', 'heartbeat', 'heartbeat', 'heartbeat', 'heartbeat'], 'a beat every 250 ms despite the lost one');
  t.notOk(agent.fenced, 'the later answers count');
  agent.stop();
});

void t.test('errors cross the wire as code, message and hints', (t) => {
  const error = new DriftwoodError('NOT_CONTROLLER', 'this node is not the controller', { controllerId: 2 });
  const back = errorFromWire(JSON.parse(JSON.stringify(error)) as Record<string, unknown>, 'x');
  t.equal(back.code, 'NOT_CONTROLLER');
  t.equal(back.message, error.message);
  t.same(back.hints, { controllerId: 2 });
  t.equal(errorFromWire({ error: 'NO_SUCH_CODE' }, 'HTTP 500').code, 'REQUEST_TIMED_OUT', 'an unknown code means an unknown outcome');
  t.end();
});
