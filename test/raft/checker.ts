// Safety checkers over a test Network, fed by every Ready the nodes persist and by looking at
// their stores after every step of a scenario:
//  - election safety: at most one leader per term (judged by who sends appends, heartbeats
//    and snapshots in a term, and by roles);
//  - state machine safety: every node applies the same entry at each index, and a snapshot a
//    node installs holds exactly the entries applied elsewhere;
//  - committed entries are never lost or changed: each node's stored log agrees, up to its
//    stored commit index, with what was applied anywhere, and reaches that commit index;
//  - log matching: two stored logs that hold an entry with the same index and term are
//    identical up to it.
import type { Applied, Network, TestNode } from './harness.js';
import { decodeState, text, violation } from './harness.js';
import type { NodeId, Ready } from '../../raft/types.js';

export class SafetyChecker {
  /** term -> the leader seen in it. */
  readonly leaders = new Map<number, NodeId>();
  /** index -> the entry applied there (by any node). */
  readonly applied = new Map<number, Applied>();

  constructor(private readonly net: Network) {
    net.onReady = (node, rd) => {
      this.onReady(node, rd);
    };
  }

  onReady(node: TestNode, rd: Ready): void {
    for (const m of rd.messages) {
      if (m.type === 'append' || m.type === 'heartbeat' || m.type === 'snapshot') this.sawLeader(m.term, m.from);
    }
    if (rd.snapshot !== null) {
      for (const entry of decodeState(rd.snapshot.data)) this.sawApplied(node.id, entry);
    }
    for (const entry of rd.committed) this.sawApplied(node.id, { index: entry.index, term: entry.term, data: text(entry.data) });
  }

  /** Checks everything that can be seen in the nodes' current state. */
  check(): void {
    for (const node of this.net.nodes.values()) {
      if (!this.net.down.has(node.id) && node.raft.role === 'leader') this.sawLeader(node.raft.term, node.id);
      this.checkStore(node);
    }
    const nodes = [...this.net.nodes.values()];
    for (let i = 0; i < nodes.length; i++) {
      for (let j = i + 1; j < nodes.length; j++) {
        const a = nodes[i];
        const b = nodes[j];
        if (a !== undefined && b !== undefined) checkLogMatching(a, b);
      }
    }
  }

  private sawLeader(term: number, id: NodeId): void {
    const known = this.leaders.get(term);
    violation(known === undefined || known === id, `two leaders in term ${term}: ${known} and ${id}`);
    this.leaders.set(term, id);
  }

  private sawApplied(id: NodeId, entry: Applied): void {
    const known = this.applied.get(entry.index);
    violation(
      known === undefined || (known.term === entry.term && known.data === entry.data),
      `node ${id} applied ${JSON.stringify(entry)} where ${JSON.stringify(known)} was applied`,
    );
    this.applied.set(entry.index, entry);
  }

  private checkStore(node: TestNode): void {
    const commit = node.store.hardState.commit;
    violation(commit <= node.storedLastIndex(), `node ${node.id} stored commit ${commit} beyond its stored log ${node.storedLastIndex()}`);
    const base = node.store.snapshot?.index ?? 0;
    for (let index = base + 1; index <= commit; index++) {
      const stored = node.storedEntry(index);
      const applied = this.applied.get(index);
      if (stored === undefined || applied === undefined) continue;
      violation(
        stored.term === applied.term && text(stored.data) === applied.data,
        `node ${node.id} holds entry ${index} (term ${stored.term}) that differs from the committed one (term ${applied.term})`,
      );
    }
  }
}

/** Log matching between two stored logs (compacted prefixes are committed, hence equal). */
export function checkLogMatching(a: TestNode, b: TestNode): void {
  const first = Math.max(a.store.snapshot?.index ?? 0, b.store.snapshot?.index ?? 0) + 1;
  const last = Math.min(a.storedLastIndex(), b.storedLastIndex());
  let matchAt = 0;
  for (let index = last; index >= first; index--) {
    if (a.storedEntry(index)?.term === b.storedEntry(index)?.term) {
      matchAt = index;
      break;
    }
  }
  for (let index = first; index <= matchAt; index++) {
    const x = a.storedEntry(index);
    const y = b.storedEntry(index);
    violation(
      x !== undefined && y !== undefined && x.term === y.term && text(x.data) === text(y.data),
      `log matching: nodes ${a.id} and ${b.id} agree at ${matchAt} but differ at ${index}`,
    );
  }
}
