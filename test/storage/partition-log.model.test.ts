// Model-based test of the partition log (fast-check commands): random sequences of append,
// read, truncate, roll, retention, flush, close/reopen and crashes at any point, on the
// simulator's disk (unsynced bytes lost, last write torn), checked against a plain array of
// batches. After every reopen: every synced batch is there and byte-identical, offsets are
// dense and increasing, nothing after a torn write survives.
//
// A failure prints fast-check's seed, path and the commands' replayPath; replay it with
//   MODEL_SEED=<seed> MODEL_PATH=<path> MODEL_REPLAY_PATH=<replayPath> \
//     npx tap --disable-coverage test/storage/partition-log.model.test.ts
import assert from 'node:assert/strict';
import fc from 'fast-check';
import t from 'tap';
import { SeededRng } from '../../sim/rng.js';
import type { LogConfig } from '../../storage/log-config.js';
import type { PartitionLog } from '../../storage/partition-log.js';
import { buildBatch, readBatchHeader, setBaseOffset, setPartitionLeaderEpoch } from '../../storage/record-batch.js';
import { batchesOf, readAll, simLog, type SimLog } from '../helpers/log.js';

const RUNS = Number(process.env.MODEL_RUNS ?? 1000);
/** How many of each command ran, so the test shows it exercised what it claims. */
const ran = new Map<string, number>();
function count(name: string): void {
  ran.set(name, (ran.get(name) ?? 0) + 1);
}

interface StoredBatch {
  readonly baseOffset: number;
  readonly lastOffset: number;
  readonly epoch: number;
  readonly bytes: Buffer;
}

/** What the log must hold: the batches from the log start, and how far they are durable. */
class Model {
  batches: StoredBatch[] = [];
  startOffset = 0;
  /** Every batch ending at or below this offset has been synced and must survive a crash. */
  durableEnd = 0;
  epoch = 0;
  batchSerial = 0;

  get endOffset(): number {
    return this.batches.at(-1)?.lastOffset === undefined ? this.startOffset : (this.batches.at(-1)?.lastOffset ?? 0) + 1;
  }

  /** The bytes a producer's batch becomes once the log stamps offset and epoch. */
  stamp(input: Buffer, baseOffset: number, epoch: number): StoredBatch {
    const bytes = Buffer.from(input);
    setBaseOffset(bytes, 0, baseOffset);
    setPartitionLeaderEpoch(bytes, 0, epoch);
    const header = readBatchHeader(bytes, 0);
    return { baseOffset, lastOffset: baseOffset + header.lastOffsetDelta, epoch, bytes };
  }

  /** Leader-epoch entries as the batches imply them. */
  epochEntries(): Array<{ epoch: number; startOffset: number }> {
    const entries: Array<{ epoch: number; startOffset: number }> = [];
    for (const batch of this.batches) {
      if (entries.length === 0 || batch.epoch > (entries.at(-1)?.epoch ?? -1)) entries.push({ epoch: batch.epoch, startOffset: batch.baseOffset });
    }
    const first = entries[0];
    if (first !== undefined) entries[0] = { epoch: first.epoch, startOffset: this.startOffset };
    return entries;
  }
}

interface Real {
  sim: SimLog;
  log: PartitionLog;
  config: Partial<LogConfig>;
  rng: SeededRng;
}

function newBatch(model: Model, recordCount: number, valueBytes: number, timestampMs: number): Buffer {
  const serial = model.batchSerial++;
  return buildBatch(Array.from({ length: recordCount }, (_, i) => ({
    key: i % 3 === 0 ? null : Buffer.from(`key-${serial}-${i}`),
    value: Buffer.alloc(valueBytes, serial % 251),
    timestampMs: timestampMs + i,
  })));
}

/** The whole log must equal the model's batches, byte for byte, with dense offsets. */
async function checkContent(model: Model, log: PartitionLog): Promise<void> {
  assert.equal(log.logStartOffset, model.startOffset, 'log start offset');
  assert.equal(log.logEndOffset, model.endOffset, 'log end offset');
  const stored = batchesOf(await readAll(log, log.logStartOffset, 1500));
  assert.equal(stored.length, model.batches.length, 'batch count');
  stored.forEach((bytes, i) => { assert.ok(bytes.equals(model.batches[i]?.bytes ?? Buffer.alloc(0)), `batch ${i} differs`); });
  assert.deepEqual(log.epochEntries, model.epochEntries(), 'leader-epoch cache');
}

class AppendCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly sizes: number[], readonly valueBytes: number, readonly newEpoch: boolean, readonly timeStepMs: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('append');
    if (this.newEpoch) model.epoch += 1;
    real.sim.clock.advance(this.timeStepMs);
    const inputs = this.sizes.map((size) => newBatch(model, size, this.valueBytes, real.sim.clock.nowMs()));
    const result = await real.log.append(Buffer.concat(inputs), { leaderEpoch: model.epoch });
    assert.equal(result.baseOffset, model.endOffset, 'append gets the log end offset');
    for (const input of inputs) model.batches.push(model.stamp(input, model.endOffset, model.epoch));
    assert.equal(result.lastOffset, model.endOffset - 1);
    if (real.config.flushIntervalMs === 0) model.durableEnd = model.endOffset;
  }
  toString = (): string => `append(${this.sizes.join('+')}x${this.valueBytes}B${this.newEpoch ? ', new epoch' : ''})`;
}

class ConcurrentAppendsCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly count: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('concurrentAppends');
    const inputs = Array.from({ length: this.count }, () => newBatch(model, 2, 30, real.sim.clock.nowMs()));
    const results = await Promise.all(inputs.map((input) => real.log.append(Buffer.from(input), { leaderEpoch: model.epoch })));
    results.forEach((result, i) => {
      assert.equal(result.baseOffset, model.endOffset, 'concurrent appends take offsets in call order');
      model.batches.push(model.stamp(inputs[i] ?? Buffer.alloc(0), model.endOffset, model.epoch));
    });
    if (real.config.flushIntervalMs === 0) model.durableEnd = model.endOffset;
  }
  toString = (): string => `concurrentAppends(${this.count})`;
}

class ReadCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly at: number, readonly bytesMax: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('read');
    const span = model.endOffset - model.startOffset;
    const offset = model.startOffset + Math.floor(this.at * (span + 1));
    const result = await real.log.read(offset, { bytesMax: this.bytesMax });
    const got = batchesOf(result.bytes);
    if (offset === model.endOffset) {
      assert.equal(got.length, 0);
      return;
    }
    const first = model.batches.findIndex((batch) => batch.lastOffset >= offset);
    assert.ok(got.length >= 1, 'a read below the log end returns at least one batch');
    got.forEach((bytes, i) => { assert.ok(bytes.equals(model.batches[first + i]?.bytes ?? Buffer.alloc(0)), `read(${offset}) batch ${i}`); });
    if (got.length > 1) assert.ok(result.bytes.length <= this.bytesMax, 'only the first batch may exceed bytesMax');
    assert.equal(result.nextOffset, (model.batches[first + got.length - 1]?.lastOffset ?? -2) + 1);
  }
  toString = (): string => `read(${this.at.toFixed(2)}, ${this.bytesMax})`;
}

class TruncateCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly at: number) {}
  check = (model: Readonly<Model>): boolean => model.batches.length > 0;
  async run(model: Model, real: Real): Promise<void> {
    count('truncate');
    const offset = model.startOffset + Math.floor(this.at * (model.endOffset - model.startOffset));
    const end = await real.log.truncateTo(offset);
    model.batches = model.batches.filter((batch) => batch.lastOffset < offset);
    assert.equal(end, model.endOffset, 'truncateTo returns the new log end');
    model.durableEnd = model.endOffset;
  }
  toString = (): string => `truncate(${this.at.toFixed(2)})`;
}

class RollCommand implements fc.AsyncCommand<Model, Real> {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('roll');
    await real.log.roll();
    model.durableEnd = model.endOffset;
    assert.equal(real.log.logEndOffset, model.endOffset);
  }
  toString = (): string => 'roll';
}

class FlushCommand implements fc.AsyncCommand<Model, Real> {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('flush');
    assert.equal(await real.log.flush(), model.endOffset);
    model.durableEnd = model.endOffset;
  }
  toString = (): string => 'flush';
}

class RetentionCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly advanceMs: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('retention');
    real.sim.clock.advance(this.advanceMs);
    const segments = real.log.segmentInfos();
    const expected = expectedDeletions(segments, real.config, real.sim.clock.nowMs());
    const deleted = await real.log.applyRetention();
    assert.equal(deleted, expected, 'retention deletes the segments its rules allow');
    model.startOffset = segments[deleted]?.baseOffset ?? model.startOffset;
    model.batches = model.batches.filter((batch) => batch.baseOffset >= model.startOffset);
    assert.equal(model.batches[0]?.baseOffset ?? model.startOffset, model.startOffset, 'retention deletes whole batches');
  }
  toString = (): string => `retention(+${this.advanceMs}ms)`;
}

/** The rule, restated: oldest sealed segments while expired or while the rest is still over the byte limit. */
function expectedDeletions(segments: Array<{ sizeBytes: number; maxTimestampMs: number }>, config: Partial<LogConfig>, nowMs: number): number {
  const retentionMs = config.retentionMs ?? -1;
  const retentionBytes = config.retentionBytes ?? -1;
  let total = segments.reduce((sum, s) => sum + s.sizeBytes, 0);
  let deleted = 0;
  for (const segment of segments.slice(0, -1)) {
    const expired = retentionMs >= 0 && segment.maxTimestampMs >= 0 && nowMs - segment.maxTimestampMs > retentionMs;
    const oversize = retentionBytes >= 0 && total - segment.sizeBytes >= retentionBytes;
    if (!expired && !oversize) break;
    total -= segment.sizeBytes;
    deleted += 1;
  }
  return deleted;
}

class ReopenCommand implements fc.AsyncCommand<Model, Real> {
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('reopen');
    await real.log.close();
    real.log = await real.sim.open(real.config);
    model.durableEnd = model.endOffset;
    assert.equal(real.log.recovery.truncatedBytes, 0, 'a clean close leaves nothing to cut');
    await checkContent(model, real.log);
  }
  toString = (): string => 'closeAndReopen';
}

type InFlight = 'nothing' | 'appends' | 'truncate' | 'roll' | 'retention' | 'flush';

/**
 * Power loss after `afterOps` more disk operations, while `inFlight` runs. The recovered log
 * must be a contiguous run of the batches that were or were being written, starting at a
 * segment boundary the retention rules allowed, ending no earlier than the durable end.
 */
class CrashCommand implements fc.AsyncCommand<Model, Real> {
  constructor(readonly afterOps: number, readonly inFlight: InFlight, readonly count: number, readonly at: number) {}
  check = (): boolean => true;
  async run(model: Model, real: Real): Promise<void> {
    count('crash');
    const { sim } = real;
    const candidates = [...model.batches];
    let durableEnd = model.durableEnd;
    const startChoices = new Set([model.startOffset]);
    sim.disk.armCrash(this.afterOps, real.rng);
    const work = this.startWork(model, real, candidates, startChoices);
    const outcomes = await Promise.allSettled(work.promises);
    outcomes.forEach((outcome, i) => {
      if (outcome.status === 'fulfilled') durableEnd = Math.max(durableEnd, work.durableIfDone[i] ?? 0);
    });
    if (work.truncateTo !== null) durableEnd = Math.min(durableEnd, work.truncateTo);
    if (!sim.disk.crashed) {
      sim.disk.disarm();
      sim.disk.crash(real.rng);
    }
    sim.disk.reboot();
    real.log = await sim.open(real.config);
    this.adopt(model, real.log, candidates, durableEnd, startChoices);
    await checkContent(model, real.log);
  }

  /** Starts the in-flight operation without waiting; says what becomes durable if each part resolves. */
  private startWork(model: Model, real: Real, candidates: StoredBatch[], startChoices: Set<number>): { promises: Array<Promise<unknown>>; durableIfDone: number[]; truncateTo: number | null } {
    const { log } = real;
    const everyAppendSyncs = real.config.flushIntervalMs === 0;
    switch (this.inFlight) {
      case 'appends': {
        const promises: Array<Promise<unknown>> = [];
        const durableIfDone: number[] = [];
        for (let i = 0; i < this.count; i += 1) {
          const input = newBatch(model, 1 + (i % 3), 40, real.sim.clock.nowMs());
          const end = candidates.at(-1) === undefined ? model.startOffset : (candidates.at(-1)?.lastOffset ?? 0) + 1;
          const stored = model.stamp(input, end, model.epoch);
          candidates.push(stored);
          promises.push(log.append(input, { leaderEpoch: model.epoch }));
          durableIfDone.push(everyAppendSyncs ? stored.lastOffset + 1 : 0);
        }
        return { promises, durableIfDone, truncateTo: null };
      }
      case 'truncate': {
        const offset = model.startOffset + Math.floor(this.at * (model.endOffset - model.startOffset));
        const cut = model.batches.find((batch) => batch.lastOffset >= offset)?.baseOffset ?? model.endOffset;
        return { promises: [log.truncateTo(offset)], durableIfDone: [0], truncateTo: cut };
      }
      case 'retention': {
        const segments = log.segmentInfos();
        const expected = expectedDeletions(segments, real.config, real.sim.clock.nowMs());
        for (const segment of segments.slice(1, expected + 1)) startChoices.add(segment.baseOffset);
        return { promises: [log.applyRetention()], durableIfDone: [0], truncateTo: null };
      }
      case 'roll':
        return { promises: [log.roll()], durableIfDone: [model.endOffset], truncateTo: null };
      case 'flush':
        return { promises: [log.flush()], durableIfDone: [model.endOffset], truncateTo: null };
      case 'nothing':
        return { promises: [], durableIfDone: [], truncateTo: null };
    }
  }

  /** Checks the recovered bounds and makes the model what survived. */
  private adopt(model: Model, log: PartitionLog, candidates: StoredBatch[], durableEnd: number, startChoices: Set<number>): void {
    const start = log.logStartOffset;
    const end = log.logEndOffset;
    assert.ok(startChoices.has(start), `log start ${start} is one of ${[...startChoices].join(',')}`);
    assert.ok(end >= durableEnd, `log end ${end} keeps the durable end ${durableEnd}`);
    const kept = candidates.filter((batch) => batch.baseOffset >= start && batch.lastOffset < end);
    assert.equal(kept[0]?.baseOffset ?? start, start, 'the log starts at a batch boundary');
    assert.equal((kept.at(-1)?.lastOffset ?? start - 1) + 1, end, 'the log ends at a batch boundary of what was written');
    model.batches = kept;
    model.startOffset = start;
    model.durableEnd = end; // recovery syncs what it kept
  }

  toString = (): string => `crash(after ${this.afterOps} ops, during ${this.inFlight}${this.inFlight === 'appends' ? ` x${this.count}` : ''})`;
}

const commands = [
  fc.tuple(fc.array(fc.integer({ min: 1, max: 5 }), { minLength: 1, maxLength: 3 }), fc.integer({ min: 0, max: 300 }), fc.boolean(), fc.integer({ min: 0, max: 5000 }))
    .map(([sizes, valueBytes, newEpoch, step]) => new AppendCommand(sizes, valueBytes, newEpoch && sizes.length === 1, step)),
  fc.integer({ min: 2, max: 12 }).map((count) => new ConcurrentAppendsCommand(count)),
  fc.tuple(fc.double({ min: 0, max: 1, noNaN: true }), fc.integer({ min: 1, max: 3000 })).map(([at, bytesMax]) => new ReadCommand(at, bytesMax)),
  fc.double({ min: 0, max: 1, noNaN: true }).map((at) => new TruncateCommand(at)),
  fc.constant(new RollCommand()),
  fc.constant(new FlushCommand()),
  fc.integer({ min: 0, max: 120_000 }).map((ms) => new RetentionCommand(ms)),
  fc.constant(new ReopenCommand()),
  fc.tuple(fc.integer({ min: 0, max: 12 }), fc.constantFrom<InFlight>('nothing', 'appends', 'appends', 'truncate', 'roll', 'retention', 'flush'), fc.integer({ min: 1, max: 6 }), fc.double({ min: 0, max: 1, noNaN: true }))
    .map(([afterOps, inFlight, count, at]) => new CrashCommand(afterOps, inFlight, count, at)),
];

const configArbitrary = fc.record({
  segmentBytesMax: fc.constantFrom(1024, 2048, 8192),
  indexIntervalBytes: fc.constantFrom(0, 100, 1000),
  flushIntervalMs: fc.constantFrom(0, 0, 1000),
  retentionMs: fc.constantFrom(-1, 30_000, 200_000),
  retentionBytes: fc.constantFrom(-1, 3000, 20_000),
  messageBytesMax: fc.constant(8192),
});

void t.test(`partition log against a model, crashes included (${RUNS} runs)`, async (t) => {
  const replay = process.env.MODEL_SEED === undefined ? {} : { seed: Number(process.env.MODEL_SEED), path: process.env.MODEL_PATH ?? '' };
  const commandReplay = process.env.MODEL_REPLAY_PATH === undefined ? {} : { replayPath: process.env.MODEL_REPLAY_PATH };
  await fc.assert(
    fc.asyncProperty(configArbitrary, fc.integer({ min: 1, max: 2 ** 31 - 1 }), fc.commands(commands, { maxCommands: 40, size: 'max', ...commandReplay }), async (config, rngSeed, cmds) => {
      const sim = simLog();
      const real: Real = { sim, config, rng: new SeededRng(rngSeed), log: await sim.open(config) };
      const model = new Model();
      await fc.asyncModelRun(() => ({ model, real }), cmds);
      await checkContent(model, real.log);
      await real.log.close().catch(() => undefined);
    }),
    { numRuns: RUNS, ...replay },
  );
  t.comment(`commands run: ${JSON.stringify(Object.fromEntries(ran))}`);
  t.ok((ran.get('crash') ?? 0) >= RUNS / 10, 'crashes were exercised');
  t.ok((ran.get('retention') ?? 0) >= RUNS / 10, 'retention was exercised');
});
