// Configs as Kafka's admin APIs describe them (DescribeConfigs, CreateTopics v5+): each with
// its value, where the value comes from, its type and its broker-level synonym, so a Kafka
// admin client shows a driftwood topic or broker as it would show a Kafka one.
import assert from 'node:assert/strict';
import type { TopicState } from '../controller/image.js';
import { effectiveTopicConfig, topicConfigSpecs, type ConfigValue } from '../controller/topic-config.js';

/** Kafka's ConfigSource numbers (DescribeConfigsResponse v1+, CreateTopicsResponse v5+). */
export const configSources = {
  DYNAMIC_TOPIC_CONFIG: 1,
  STATIC_BROKER_CONFIG: 4,
  DEFAULT_CONFIG: 5,
} as const;
export type ConfigSource = (typeof configSources)[keyof typeof configSources];

/** Kafka's ConfigType numbers (DescribeConfigs v3+). */
export const configTypes = { BOOLEAN: 1, STRING: 2, INT: 3, LONG: 5, LIST: 7 } as const;
export type ConfigType = (typeof configTypes)[keyof typeof configTypes];

export interface ConfigEntry {
  readonly name: string;
  readonly value: string | null;
  readonly source: ConfigSource;
  readonly type: ConfigType;
  /** Nothing in driftwood changes it after the topic or the process starts. */
  readonly readOnly: boolean;
  /** The same setting at a lower level (a topic's default comes from the broker's): Kafka's synonyms, strongest first. */
  readonly synonyms: ReadonlyArray<{ readonly name: string; readonly value: string | null; readonly source: ConfigSource }>;
}

/** Each topic config's broker-level name (the default it falls back to) and Kafka's type for it. */
const topicConfigKafka: Readonly<Record<string, { readonly brokerName: string; readonly type: ConfigType }>> = {
  'retention.ms': { brokerName: 'log.retention.ms', type: configTypes.LONG },
  'retention.bytes': { brokerName: 'log.retention.bytes', type: configTypes.LONG },
  'segment.bytes': { brokerName: 'log.segment.bytes', type: configTypes.INT },
  'segment.ms': { brokerName: 'log.roll.ms', type: configTypes.LONG },
  'min.insync.replicas': { brokerName: 'min.insync.replicas', type: configTypes.INT },
  'cleanup.policy': { brokerName: 'log.cleanup.policy', type: configTypes.LIST },
  'unclean.leader.election.enable': { brokerName: 'unclean.leader.election.enable', type: configTypes.BOOLEAN },
  'max.message.bytes': { brokerName: 'message.max.bytes', type: configTypes.INT },
  'message.timestamp.type': { brokerName: 'log.message.timestamp.type', type: configTypes.STRING },
  'flush.ms': { brokerName: 'log.flush.interval.ms', type: configTypes.LONG },
};

function kafkaOf(name: string): { readonly brokerName: string; readonly type: ConfigType } {
  const kafka = topicConfigKafka[name];
  assert(kafka !== undefined, `topic config ${name} has no Kafka description`);
  return kafka;
}

/**
 * Every topic config with its value: an override given at creation (DYNAMIC_TOPIC_CONFIG) or
 * the default (DEFAULT_CONFIG). Read-only: driftwood alters no topic config after creation.
 */
export function topicConfigEntries(topic: TopicState): ConfigEntry[] {
  const effective = effectiveTopicConfig(topic.configs) as unknown as Readonly<Record<string, ConfigValue>>;
  const entries = Object.keys(topicConfigSpecs).sort().map((name): ConfigEntry => {
    const { brokerName, type } = kafkaOf(name);
    const spec = topicConfigSpecs[name];
    assert(spec !== undefined);
    const fallback = { name: brokerName, value: String(spec.default), source: configSources.DEFAULT_CONFIG };
    const override = topic.configs[name];
    const value = String(effective[name]);
    if (override === undefined) return { name, value, source: configSources.DEFAULT_CONFIG, type, readOnly: true, synonyms: [fallback] };
    return { name, value, source: configSources.DYNAMIC_TOPIC_CONFIG, type, readOnly: true, synonyms: [{ name, value, source: configSources.DYNAMIC_TOPIC_CONFIG }, fallback] };
  });
  assert.equal(entries.length, Object.keys(topicConfigSpecs).length);
  return entries;
}

/** What a broker can truthfully say of itself: its startup settings and its fixed defaults. */
export interface BrokerSettings {
  readonly brokerId: number;
  /** host:port the Kafka listener binds, and the one clients are told. */
  readonly kafkaListen: string;
  readonly kafkaAdvertised: string;
  readonly logDirs: string;
  readonly quorumVoters: string;
  readonly autoCreateTopics: boolean;
  readonly requestBytesMax: number;
  readonly connectionsIdleMs: number;
  readonly replicaLagTimeMaxMs: number;
}

/** The partitions a topic gets when none are asked (Kafka's num.partitions default). */
export const DEFAULT_PARTITIONS = 1;
/** The replication factor a topic gets when none is asked, as the HTTP route gives it: min(3, live brokers). */
export const DEFAULT_REPLICATION_FACTOR_MAX = 3;

/**
 * A broker's configs under Kafka's names: what it was started with (STATIC_BROKER_CONFIG),
 * what it fixes (DEFAULT_CONFIG), and the topic defaults under their broker names. All are
 * read-only: driftwood changes no broker config at run time.
 */
export function brokerConfigEntries(settings: BrokerSettings, defaultReplicationFactor: number): ConfigEntry[] {
  const fixed = (name: string, value: string, type: ConfigType, source: ConfigSource = configSources.DEFAULT_CONFIG): ConfigEntry => ({ name, value, source, type, readOnly: true, synonyms: [{ name, value, source }] });
  const entries = [
    fixed('node.id', String(settings.brokerId), configTypes.INT, configSources.STATIC_BROKER_CONFIG),
    fixed('broker.id', String(settings.brokerId), configTypes.INT, configSources.STATIC_BROKER_CONFIG),
    fixed('listeners', `PLAINTEXT://${settings.kafkaListen}`, configTypes.LIST, configSources.STATIC_BROKER_CONFIG),
    fixed('advertised.listeners', `PLAINTEXT://${settings.kafkaAdvertised}`, configTypes.LIST, configSources.STATIC_BROKER_CONFIG),
    fixed('log.dirs', settings.logDirs, configTypes.LIST, configSources.STATIC_BROKER_CONFIG),
    fixed('controller.quorum.voters', settings.quorumVoters, configTypes.LIST, configSources.STATIC_BROKER_CONFIG),
    fixed('auto.create.topics.enable', String(settings.autoCreateTopics), configTypes.BOOLEAN, settings.autoCreateTopics ? configSources.STATIC_BROKER_CONFIG : configSources.DEFAULT_CONFIG),
    fixed('num.partitions', String(DEFAULT_PARTITIONS), configTypes.INT),
    fixed('default.replication.factor', String(defaultReplicationFactor), configTypes.INT),
    fixed('socket.request.max.bytes', String(settings.requestBytesMax), configTypes.INT),
    fixed('connections.max.idle.ms', String(settings.connectionsIdleMs), configTypes.LONG),
    fixed('replica.lag.time.max.ms', String(settings.replicaLagTimeMaxMs), configTypes.LONG),
    ...Object.entries(topicConfigSpecs).map(([name, spec]) => fixed(kafkaOf(name).brokerName, String(spec.default), kafkaOf(name).type)),
  ];
  assert.equal(new Set(entries.map((e) => e.name)).size, entries.length, 'broker config names are distinct');
  return entries.sort((a, b) => a.name.localeCompare(b.name));
}
