// A real three-process Raft quorum over HTTP/2 on loopback: it elects a leader, replicates,
// survives kill -9 of the leader (the other two elect a new one and keep every acknowledged
// entry), and the killed node rejoins and catches up.
import t from 'tap';
import { h2Json, localCluster, waitFor } from '../helpers/processes.js';

interface RaftView {
  id: number;
  role: string;
  term: number;
  leader: number;
  applied: { count: number; lastIndex: number; chain: string };
}

void t.test('three quorum processes elect, replicate, survive kill -9 of the leader', { timeout: 90_000 }, async (t) => {
  const cluster = await localCluster(t, 'quorum');
  const { ports, nodes } = cluster;
  const start = (id: number): void => { cluster.start(id, 'quorum', ['--listen', `127.0.0.1:${ports[id - 1]}`]); };
  const view = async (id: number): Promise<RaftView> => (await h2Json(`http://127.0.0.1:${ports[id - 1]}/v1/raft`)).json as RaftView;
  const leaderAmong = async (ids: number[]): Promise<number | undefined> => {
    const views = await Promise.all(ids.map(view));
    const leaders = views.filter((v) => v.role === 'leader');
    return leaders.length === 1 ? leaders[0]?.id : undefined;
  };
  for (const id of [1, 2, 3]) start(id);

  const first = await waitFor('a leader', 20_000, () => leaderAmong([1, 2, 3]));
  const overHttp1 = await fetch(`http://127.0.0.1:${ports[0]}/v1/raft`);
  t.equal(overHttp1.status, 200, 'the same port answers HTTP/1.1, as curl and browsers use it');
  t.match(await overHttp1.json(), { id: 1, leader: first });
  t.ok(first >= 1 && first <= 3, `node ${first} leads`);
  const propose = async (id: number, data: string): Promise<number> => {
    const { status, json } = await h2Json(`http://127.0.0.1:${ports[id - 1]}/v1/raft/entries`, 'POST', { data });
    if (status !== 200) throw new Error(`propose answered ${status}: ${JSON.stringify(json)}`);
    return (json as { index: number }).index;
  };
  const acked: number[] = [];
  for (let i = 0; i < 20; i += 1) acked.push(await propose(first, `before-${i}`));
  const follower = [1, 2, 3].find((id) => id !== first) ?? 0;
  const notLeader = await h2Json(`http://127.0.0.1:${ports[follower - 1]}/v1/raft/entries`, 'POST', { data: 'x' });
  t.equal(notLeader.status, 421, 'a follower refuses proposals');
  t.match(notLeader.json, { error: 'NOT_CONTROLLER', leaderId: first });

  nodes.get(first)?.child.kill('SIGKILL');
  const killedAt = Date.now();
  const survivors = [1, 2, 3].filter((id) => id !== first);
  const second = await waitFor('a new leader', 20_000, () => leaderAmong(survivors));
  t.not(second, first, `node ${second} took over ${Date.now() - killedAt} ms after kill -9`);
  for (let i = 0; i < 20; i += 1) acked.push(await propose(second, `after-${i}`));
  const lastAcked = Math.max(...acked);
  for (const id of survivors) {
    const applied = await waitFor(`node ${id} to apply ${lastAcked}`, 10_000, async () => {
      const v = await view(id);
      return v.applied.lastIndex >= lastAcked ? v.applied : undefined;
    });
    t.ok(applied.count >= 40, `node ${id} applied all ${applied.count} entries`);
  }

  start(first);
  const rejoined = await waitFor(`node ${first} to catch up`, 20_000, async () => {
    const v = await view(first);
    return v.applied.lastIndex >= lastAcked ? v : undefined;
  });
  const survivorView = await view(second);
  const atSameIndex = rejoined.applied.lastIndex === survivorView.applied.lastIndex;
  if (atSameIndex) t.equal(rejoined.applied.chain, survivorView.applied.chain, 'the rejoined node applied the same entries');
  t.equal(rejoined.role, 'follower');
  t.equal(rejoined.leader, second);
});
