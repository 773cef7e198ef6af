// `driftwood bench kafka` at a tiny size: the result's shape, every record read back by both
// consume paths (the count the benchmark reads from batch headers equals what was produced),
// the ratios from the figures, the ABBA turns, and the kcat rows (measured when kcat is on PATH, else skipped).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import t from 'tap';
import { onlyJson, runDriftwood } from './helpers.js';

const RECORDS = 2500;

const kcatPresent = await promisify(execFile)('kcat', ['-V']).then(() => true, () => false);

interface Side { records: number; passes?: number; requests: number; seconds: number; recordsPerSec: number; megabytesPerSec: number }

void t.test(`${RECORDS} records through HTTP/2 and the Kafka listener, read back whole by each path`, { timeout: 110_000 }, async (t) => {
  // 1,000-record batches: two full ones and a smaller last one per path.
  const run = await runDriftwood(['bench', 'kafka', '--records', String(RECORDS), '--record-bytes', '50', '--fetch-bytes', '65536', '--json'], 100_000);
  t.equal(run.code, 0, run.stderr);
  const result = onlyJson(run.stdout) as unknown as {
    nodes: number; partitions: number; replicationFactor: number; minInsyncReplicas: number; records: number; recordBytes: number; batchRecords: number;
    produce: { http: Side & { failedRequests: number; latencyMsP50: number; latencyMsP99: number }; kafka: Side & { failedRequests: number; latencyMsP50: number; latencyMsP99: number }; ratio: number };
    consume: { http: Side; kafka: Side; ratio: number };
    kcat: { outcome: string; note: string | null; produce: Side | null; consume: Side | null };
  };
  t.match(result, { nodes: 3, partitions: 3, replicationFactor: 3, minInsyncReplicas: 2, records: RECORDS, recordBytes: 50, batchRecords: 1000 });
  for (const name of ['http', 'kafka'] as const) {
    const produced = result.produce[name];
    t.equal(produced.records, RECORDS, `${name}: every record acknowledged`);
    t.equal(produced.requests, 3, `${name}: three produce requests (in two rounds)`);
    t.equal(produced.failedRequests, 0);
    t.ok(produced.recordsPerSec > 0 && produced.latencyMsP50 > 0 && produced.latencyMsP50 <= produced.latencyMsP99, `${name}: rate and ordered latencies`);
    const consumed = result.consume[name];
    t.equal(consumed.records, RECORDS, `${name}: every record read back`);
    t.equal(consumed.passes, 2, `${name}: two passes (ABBA order)`);
    t.ok(consumed.requests >= 6, `${name}: at least one request per partition and pass (${consumed.requests})`);
    t.ok(consumed.recordsPerSec > 0 && consumed.megabytesPerSec > 0);
  }
  t.equal(result.produce.ratio, Math.round((result.produce.kafka.recordsPerSec / result.produce.http.recordsPerSec) * 1000) / 1000);
  t.equal(result.consume.ratio, Math.round((result.consume.kafka.recordsPerSec / result.consume.http.recordsPerSec) * 1000) / 1000);
  if (kcatPresent) {
    t.equal(result.kcat.outcome, 'measured', result.kcat.note ?? '');
    t.equal(result.kcat.produce?.records, RECORDS);
    t.equal(result.kcat.consume?.records, RECORDS);
  } else {
    t.match(result.kcat, { outcome: 'skipped', note: /not on PATH/ });
  }
  const turns = run.stderr.split('\n').filter((line) => /^(HTTP\/2|Kafka) (produce|consume)/.test(line)).map((line) => line.split(/[,(]/)[0]?.trim());
  t.same(turns, ['HTTP/2 produce', 'Kafka produce', 'Kafka produce', 'HTTP/2 produce', 'HTTP/2 consume', 'Kafka consume', 'Kafka consume', 'HTTP/2 consume'], 'progress lines on stderr: the paths take turns ABBA');
  t.match(run.stderr, /Kafka produce \(Produce v9\)/);
  t.match(run.stderr, /Kafka consume \(Fetch v11\)/);
});

void t.test('--without-kcat skips the kcat rows; usage errors are one line and exit code 2', { timeout: 60_000 }, async (t) => {
  const cases: Array<[string[], RegExp]> = [
    [['--records', '0'], /--records must be/],
    [['--partitions', 'x'], /--partitions must be an integer/],
    [['--seconds', '5'], /Unknown option '--seconds'/],
  ];
  for (const [args, message] of cases) {
    const run = await runDriftwood(['bench', 'kafka', ...args], 10_000);
    t.equal(run.code, 2, `${args.join(' ')}: ${run.stderr}`);
    t.match(run.stderr, message);
    t.equal(run.stderr.trim().split('\n').length, 1, run.stderr);
  }
  const run = await runDriftwood(['bench', 'kafka', '--records', '10', '--partitions', '1', '--without-kcat', '--json'], 50_000);
  t.equal(run.code, 0, run.stderr);
  const result = onlyJson(run.stdout) as { kcat: unknown; consume: { kafka: { records: number } } };
  t.same(result.kcat, { outcome: 'skipped', note: 'turned off (--without-kcat)', produce: null, consume: null });
  t.equal(result.consume.kafka.records, 10);
});
