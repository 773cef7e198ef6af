// Kafka's consumer-protocol assignment as KafkaJS encodes it (an independent encoder) reads
// back as the partitions it names; anything else is null, never a throw.
import t from 'tap';
import { AssignerProtocol } from 'kafkajs';
import { consumerAssignment } from '../../src/group/consumer-protocol.js';

void t.test('a KafkaJS-encoded assignment gives its partitions, sorted', (t) => {
  const encoded = AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: { b: [3, 1], a: [0] }, userData: Buffer.from('x') });
  t.same(consumerAssignment(encoded), [{ topic: 'a', partitions: [0] }, { topic: 'b', partitions: [1, 3] }]);
  const empty = AssignerProtocol.MemberAssignment.encode({ version: 0, assignment: {}, userData: Buffer.alloc(0) });
  t.same(consumerAssignment(empty), []);
  t.end();
});

void t.test('bytes that are not an assignment are null', (t) => {
  const encoded = AssignerProtocol.MemberAssignment.encode({ version: 1, assignment: { topic: [0, 1, 2] }, userData: Buffer.alloc(0) });
  for (let cut = 0; cut < 14; cut += 1) t.equal(consumerAssignment(encoded.subarray(0, cut)), null, `cut at ${cut}`);
  t.equal(consumerAssignment(Buffer.from([0xff, 0xff, 0, 0, 0, 0])), null, 'a negative version');
  t.equal(consumerAssignment(Buffer.from([0, 0, 0x7f, 0xff, 0xff, 0xff])), null, 'more topics than bytes');
  t.equal(consumerAssignment(Buffer.from([0, 0, 0, 0, 0, 1, 0xff, 0xff])), null, 'a negative name length');
  t.end();
});
