// The `bench all` table and its rows, from fixed benchmark results (no cluster needed).
import t from 'tap';
import { failoverRow, formatTable, idleRow, kafkaRows, produceRow, TARGETS } from '../../src/bench/suite.js';
import type { KafkaBenchResult } from '../../src/bench/kafka.js';
import type { ProduceBenchResult } from '../../src/bench/cluster.js';
import type { FailoverBenchResult } from '../../src/bench/failover.js';

const produce = (recordsPerSec: number): ProduceBenchResult => ({
  machine: 'm', nodes: 3, partitions: 3, replicationFactor: 3, acks: 'all', recordBytes: 100, batchRecords: 1000, requestsInFlight: 16,
  seconds: 15, records: recordsPerSec * 15, recordsPerSec, megabytesPerSec: recordsPerSec / 1e4, failedRequests: 0, latencyMsP50: 40, latencyMsP99: 90,
});

const failover = (windowMs: number | null, lost: number): FailoverBenchResult => ({
  windowMs, longestAckGapMs: 1700, acknowledged: 30_000, lost, duplicates: 0, errors: 0, sent: 30_000, killedBroker: 2, newLeader: 1,
  recordsPerSec: 2000, partitions: 3, errorCodes: {}, machine: 'm',
});

void t.test('formatTable: a header, a rule, one line per row, columns padded to one width', (t) => {
  const text = formatTable([
    { figure: 'a', measured: '1 rec/s', target: '>= 2 rec/s', met: 'no' },
    { figure: 'a longer figure', measured: 'not yet measured (x)', target: '<= 5 ms', met: 'not yet measured' },
  ]);
  const lines = text.split('\n');
  t.equal(lines.length, 4);
  t.equal(lines[0], '| figure          | measured             | target     | met?             |');
  t.equal(lines[1], '|-----------------|----------------------|------------|------------------|');
  t.equal(lines[2], '| a               | 1 rec/s              | >= 2 rec/s | no               |');
  t.ok(lines.every((line) => line.length === lines[0]?.length), 'every line has the same width');
  t.equal(formatTable([]).split('\n').length, 2, 'no rows: header and rule only');
  t.end();
});

void t.test('rows: met against the issue targets', (t) => {
  t.equal(produceRow('p', produce(TARGETS.produceRf3RecordsPerSec), TARGETS.produceRf3RecordsPerSec).met, 'yes', 'at the target is met');
  const below = produceRow('p', produce(300_000), TARGETS.produceRf3RecordsPerSec);
  t.equal(below.met, 'no');
  t.match(below.measured, /^300,000 rec\/s \(30 MB\/s, p50 40 ms, p99 90 ms\)$/);
  t.equal(below.target, '>= 421,823 rec/s');
  t.equal(failoverRow(failover(1400, 0)).met, 'yes');
  t.equal(failoverRow(failover(1400, 1)).met, 'no', 'a lost record fails the row whatever the window');
  t.equal(failoverRow(failover(1600, 0)).met, 'no');
  t.equal(failoverRow(failover(null, 0)).met, 'no', 'no acknowledgement after the kill');
  t.match(failoverRow(failover(null, 0)).measured, /no acknowledgement after the kill/);
  const idle = { machine: 'm', partitions: 10_000, replicationFactor: 3, seconds: 10, createSeconds: 97, cpuPercentByNode: [2, 3, 4], rssMiBByNode: [300, 310, 290] };
  t.equal(idleRow(idle).met, 'yes', 'CPU and RSS under their bounds');
  t.match(idleRow(idle).measured, /^in sync 97 s after the create; CPU per node 2% \/ 3% \/ 4%; RSS 300 \/ 310 \/ 290 MiB$/);
  t.equal(idleRow({ ...idle, cpuPercentByNode: [2, 6, 4] }).met, 'no');
  t.equal(idleRow({ ...idle, rssMiBByNode: [300, 1100, 290] }).met, 'no', 'RSS over 1 GiB');
  t.equal(idleRow({ ...idle, partitions: 2000 }).met, 'no', 'fewer partitions than the issue asks');
  t.match(idleRow({ ...idle, partitions: 2000 }).measured, /smaller than the issue's 10,000/);
  t.end();
});

const kafka = (produceRatio: number, consumeRatio: number, kcat: KafkaBenchResult['kcat']): KafkaBenchResult => {
  const produceSide = (recordsPerSec: number): KafkaBenchResult['produce']['http'] => ({ records: 1_000_000, requests: 1000, failedRequests: 0, errors: {}, seconds: 1e6 / recordsPerSec, recordsPerSec, megabytesPerSec: recordsPerSec / 1e4, latencyMsP50: 50, latencyMsP99: 120 });
  const consumeSide = (recordsPerSec: number): KafkaBenchResult['consume']['http'] => ({ records: 1_000_000, passes: 2, requests: 60, seconds: 1e6 / recordsPerSec, recordsPerSec, megabytesPerSec: recordsPerSec / 1e4 });
  return {
    machine: 'm', nodes: 3, partitions: 3, replicationFactor: 3, minInsyncReplicas: 2, records: 1_000_000, recordBytes: 100, batchRecords: 1000, requestsInFlight: 16, fetchBytes: 4 << 20,
    produce: { http: produceSide(300_000), kafka: produceSide(300_000 * produceRatio), ratio: produceRatio },
    consume: { http: consumeSide(1_000_000), kafka: consumeSide(1_000_000 * consumeRatio), ratio: consumeRatio },
    kcat,
  };
};

void t.test('Kafka rows: met at 80% of HTTP/2 and above; kcat measured, skipped or failed', (t) => {
  const measured = { outcome: 'measured' as const, note: null, produce: { records: 1_000_000, seconds: 8, recordsPerSec: 125_000, megabytesPerSec: 12.5 }, consume: { records: 1_000_000, seconds: 5, recordsPerSec: 200_000, megabytesPerSec: 20 } };
  const rows = kafkaRows(kafka(0.8, 1.1, measured));
  t.equal(rows.length, 3);
  t.same(rows.map((row) => row.met), ['yes', 'yes', 'n/a'], 'a ratio of 0.8 is within 20%');
  t.match(rows[0]?.measured, /^ratio 0\.8: Kafka 240,000 rec\/s \(p50 50 \/ p99 120 ms\) vs HTTP\/2 300,000 rec\/s/);
  t.equal(rows[0]?.target, 'within 20% of HTTP/2 (Kafka/HTTP >= 0.8)');
  t.match(rows[2]?.measured, /^125,000 \/ 200,000 rec\/s/);
  t.same(kafkaRows(kafka(0.79, 0.5, measured)).map((row) => row.met), ['no', 'no', 'n/a'], 'below 0.8 is not met');
  const failing = kafka(1, 1, measured);
  failing.produce.kafka.failedRequests = 2;
  t.equal(kafkaRows(failing)[0]?.met, 'no', 'failed produce requests fail the row whatever the ratio');
  t.match(kafkaRows(failing)[0]?.measured, /2 failed requests/);
  const skipped = kafkaRows(kafka(1, 1, { outcome: 'skipped', note: 'kcat is not on PATH', produce: null, consume: null }))[2];
  t.match(skipped, { measured: 'skipped: kcat is not on PATH', met: 'n/a' });
  const failed = kafkaRows(kafka(1, 1, { outcome: 'failed', note: 'kcat -C -e read 9 records, 10 were produced', produce: null, consume: null }))[2];
  t.match(failed, { measured: /^failed: kcat -C -e read 9/, met: 'failed' });
  t.end();
});
