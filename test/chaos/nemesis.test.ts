// The nemesis against a fake cluster on a fake clock: every kind of fault comes first, each
// fault is undone before the next, the same seed gives the same schedule, and it stops
// before the end time.
import t from 'tap';
import { faultKinds, faultOrder, noFaults, runNemesis, SeededRng, type NemesisTarget } from '../../src/chaos/nemesis.js';

async function schedule(seed: number, endMs: number, ids: readonly number[] = [1, 2, 3], roles: { controller: number | null; leaders: number[] } = { controller: 2, leaders: [1, 3, 3] }): Promise<{ actions: string[]; counts: ReturnType<typeof noFaults>; lastMs: number }> {
  let nowMs = 0;
  const actions: string[] = [];
  const down = new Set<string>();
  const act = (what: string, id: number, undo?: string): void => {
    actions.push(`${nowMs} ${what} ${id}`);
    if (undo === undefined) down.add(`${what} ${id}`);
    else down.delete(`${undo} ${id}`);
  };
  const target: NemesisTarget = {
    ids,
    roles: () => Promise.resolve(roles),
    kill: (id) => { act('kill', id); return Promise.resolve(); },
    restart: (id) => { act('restart', id, 'kill'); },
    pause: (id) => { act('pause', id); },
    resume: (id) => { act('resume', id, 'pause'); },
    cut: (id) => { act('cut', id); },
    heal: (id) => { act('heal', id, 'cut'); },
  };
  const sleep = (ms: number): Promise<void> => {
    // One fault at a time: nothing is left down when the nemesis waits between faults.
    nowMs += ms;
    return Promise.resolve();
  };
  const counts = noFaults();
  await runNemesis({ seed, target, endMs, nowMs: () => nowMs, sleep, log: () => undefined, stopped: () => nowMs >= endMs, counts });
  if (down.size > 0) throw new Error(`left down: ${[...down].join(', ')}`);
  return { actions, counts, lastMs: nowMs };
}

void t.test('the same seed gives the same schedule; another seed another', async (t) => {
  const a = await schedule(42, 120_000);
  const b = await schedule(42, 120_000);
  const c = await schedule(43, 120_000);
  t.same(a.actions, b.actions);
  t.not(a.actions.join(), c.actions.join());
  t.ok(a.actions.length > 10, 'many faults in two minutes');
});

void t.test('every kind comes once before any repeats, and counts add up', async (t) => {
  for (const seed of [1, 2, 3, 7, 99]) {
    const order = faultOrder(new SeededRng(seed), 6);
    t.same([...order.slice(0, 4)].sort(), [...faultKinds].sort(), `seed ${seed}: the first four are the four kinds`);
    const { counts, actions } = await schedule(seed, 300_000);
    for (const kind of faultKinds) t.ok(counts[kind] >= 1, `seed ${seed}: ${kind} injected`);
    const kills = actions.filter((a) => a.includes(' kill ')).length;
    t.equal(kills, counts['kill-one'] + 2 * counts['kill-two'], 'kill-two kills two nodes');
    t.equal(actions.filter((a) => a.includes(' pause ')).length, counts.pause);
  }
});

void t.test('no fault runs past the end', async (t) => {
  const { lastMs, actions } = await schedule(5, 20_000);
  t.ok(actions.length > 0);
  // The last gap may pass the end (then nothing starts), but every undo happens by then.
  const lastUndo = Math.max(...actions.filter((a) => /restart|resume|heal/.test(a)).map((a) => Number(a.split(' ')[0])));
  t.ok(lastUndo <= 20_000, `the last fault ended at ${lastUndo} ms`);
  t.ok(lastMs <= 20_000 + 4000, 'it returns after at most one more gap');
});

void t.test('paused and cut victims are the controller or a leader when the cluster names them', async (t) => {
  const { actions } = await schedule(11, 300_000, [1, 2, 3, 4, 5], { controller: 2, leaders: [3] });
  const victims = new Set(actions.filter((a) => / (pause|cut) /.test(a)).map((a) => a.split(' ')[2]));
  t.same([...victims].sort(), ['2', '3'], 'only the controller (2) and the leader (3) are paused or cut');
  const anyone = await schedule(11, 300_000, [1, 2, 3, 4, 5], { controller: null, leaders: [] });
  t.ok(new Set(anyone.actions.filter((a) => / (pause|cut) /.test(a)).map((a) => a.split(' ')[2])).size > 2, 'any node when the cluster names nobody');
});
