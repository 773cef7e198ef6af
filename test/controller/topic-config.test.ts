import t from 'tap';
import { effectiveTopicConfig, validateTopicConfigs, validateTopicName } from '../../src/controller/topic-config.js';
import { throwsCode } from './helpers.js';

void t.test('valid configs are normalized to typed values', (t) => {
  t.same(validateTopicConfigs({}), {});
  t.same(
    validateTopicConfigs({ 'retention.ms': '3600000', 'unclean.leader.election.enable': 'true', 'min.insync.replicas': 2, 'message.timestamp.type': 'LogAppendTime', 'retention.bytes': -1, 'flush.ms': 0 }),
    { 'flush.ms': 0, 'message.timestamp.type': 'LogAppendTime', 'min.insync.replicas': 2, 'retention.bytes': -1, 'retention.ms': 3_600_000, 'unclean.leader.election.enable': true },
  );
  t.end();
});

void t.test('defaults are Kafka’s', (t) => {
  const c = effectiveTopicConfig({ 'retention.ms': 5 });
  t.equal(c['retention.ms'], 5);
  t.equal(c['retention.bytes'], -1);
  t.equal(c['segment.bytes'], 1_073_741_824);
  t.equal(c['segment.ms'], 604_800_000);
  t.equal(c['min.insync.replicas'], 1);
  t.equal(c['cleanup.policy'], 'delete');
  t.equal(c['unclean.leader.election.enable'], false);
  t.equal(c['max.message.bytes'], 1_048_588);
  t.equal(c['message.timestamp.type'], 'CreateTime');
  t.end();
});

void t.test('bad configs are INVALID_CONFIG naming the key', (t) => {
  const bad: [Record<string, unknown>, string][] = [
    [{ 'retention.mss': 1 }, 'retention.mss'],
    [{ 'retention.ms': -2 }, 'retention.ms'],
    [{ 'retention.ms': 1.5 }, 'retention.ms'],
    [{ 'retention.ms': 'soon' }, 'retention.ms'],
    [{ 'segment.bytes': 13 }, 'segment.bytes'],
    [{ 'min.insync.replicas': 0 }, 'min.insync.replicas'],
    [{ 'cleanup.policy': 'compact' }, 'cleanup.policy'],
    [{ 'cleanup.policy': 'shred' }, 'cleanup.policy'],
    [{ 'unclean.leader.election.enable': 'yes' }, 'unclean.leader.election.enable'],
    [{ 'message.timestamp.type': 'Now' }, 'message.timestamp.type'],
    [{ 'max.message.bytes': null }, 'max.message.bytes'],
  ];
  for (const [input, key] of bad) {
    throwsCode(t, () => validateTopicConfigs(input), 'INVALID_CONFIG', key);
  }
  t.throws(() => validateTopicConfigs({ 'cleanup.policy': 'compact' }), /not supported yet/);
  t.end();
});

void t.test('topic names follow Kafka’s rules', (t) => {
  for (const name of ['a', 'orders.v2', 'my_topic-1', 'A'.repeat(249), '...']) t.doesNotThrow(() => { validateTopicName(name); }, name);
  for (const name of ['', '.', '..', 'a'.repeat(250), 'has space', 'slash/ed', 'ünï', 7]) {
    throwsCode(t, () => { validateTopicName(name); }, 'INVALID_TOPIC_EXCEPTION');
  }
  t.end();
});
