// The Kafka admin handlers' view of a real node (KafkaAdminBroker): topic creations and
// deletions sent to the controller exactly as the HTTP admin routes send them, the node's
// startup settings for DescribeConfigs, and Kafka's topic auto-creation when it is on.
import { join } from 'node:path';
import type { Logger } from 'pino';
import { isDriftwoodError } from '../../storage/errors.js';
import { nodeClock } from '../../storage/node-clock.js';
import type { CreateTopicRequest } from '../controller/commands.js';
import { defaultReplicationFactor, type KafkaAdminBroker } from '../kafka/admin-handlers.js';
import { DEFAULT_PARTITIONS, type BrokerSettings } from '../kafka/config-entries.js';
import { defaultKafkaListenerLimits } from '../kafka/limits.js';
import { defaultReplicaManagerConfig } from '../replica/replica-manager.js';
import { refuseInternal } from './node-admin-routes.js';
import type { Broker } from './node-broker.js';

/** Auto-creations waiting on the controller at once; past it a missing topic waits for the client's next metadata request. */
const AUTO_CREATIONS_IN_FLIGHT_MAX = 64;

export function kafkaAdminBroker(broker: Broker, log: Logger): KafkaAdminBroker {
  const { config, node } = broker;
  const createTopic = (request: CreateTopicRequest): ReturnType<KafkaAdminBroker['createTopic']> => {
    try {
      refuseInternal(request.name);
    } catch (error) {
      return Promise.reject(error instanceof Error ? error : new Error(String(error)));
    }
    return node.toController({ kind: 'create-topic', body: request });
  };
  return {
    image: node.image,
    clock: nodeClock,
    brokerId: config.id,
    createTopic,
    deleteTopic: async (name) => {
      refuseInternal(name);
      await node.toController({ kind: 'delete-topic', body: { name } });
    },
    brokerSettings: brokerSettings(broker),
    autoCreateTopic: config.kafka?.autoCreateTopics === true ? autoCreator(broker, createTopic, log) : null,
  };
}

function brokerSettings(broker: Broker): BrokerSettings {
  const { config } = broker;
  const voters = config.voters ?? config.peers.map((peer) => peer.id);
  return {
    brokerId: config.id,
    kafkaListen: config.kafka === undefined ? '' : `${config.kafka.host}:${config.kafka.port}`,
    kafkaAdvertised: config.kafka?.advertisedAddress ?? '',
    logDirs: join(config.dataDir, 'logs'),
    quorumVoters: config.peers.filter((peer) => voters.includes(peer.id)).map((peer) => `${peer.id}@${peer.host}:${peer.port}`).join(','),
    autoCreateTopics: config.kafka?.autoCreateTopics === true,
    requestBytesMax: defaultKafkaListenerLimits.requestBytesMax,
    connectionsIdleMs: defaultKafkaListenerLimits.idleTimeoutMs,
    replicaLagTimeMaxMs: defaultReplicaManagerConfig.replicaLagTimeMaxMs,
  };
}

/**
 * Kafka's auto.create.topics.enable: a creation with the broker defaults, started without
 * waiting. Clients ask for a missing topic's metadata again and again until it has a leader,
 * so a name already being created is not sent twice.
 */
function autoCreator(broker: Broker, createTopic: KafkaAdminBroker['createTopic'], log: Logger): (name: string) => void {
  const inFlight = new Set<string>();
  return (name) => {
    if (inFlight.has(name) || inFlight.size >= AUTO_CREATIONS_IN_FLIGHT_MAX) return;
    inFlight.add(name);
    const request = { name, partitions: DEFAULT_PARTITIONS, replicationFactor: defaultReplicationFactor(broker.node.image), configs: {} };
    createTopic(request)
      .then((topic) => { log.info({ topic: name, topicId: topic.topicId, replicationFactor: request.replicationFactor }, 'topic auto-created for a Kafka metadata request'); })
      .catch((error: unknown) => {
        // Another broker's creation of the same topic won the race: what the client wanted.
        if (!isDriftwoodError(error, 'TOPIC_ALREADY_EXISTS')) log.warn({ topic: name, err: error }, 'topic auto-creation failed');
      })
      .finally(() => { inFlight.delete(name); });
  };
}
