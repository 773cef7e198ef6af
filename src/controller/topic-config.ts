// Topic configs with Kafka's names and defaults. A topic record stores only the overrides a
// user gave, already validated and normalized (numbers as numbers, booleans as booleans), so
// every node reads the same typed values from the log; defaults fill in the rest on read.
import assert from 'node:assert/strict';
import { DriftwoodError } from '../../storage/errors.js';

export type ConfigValue = string | number | boolean;
export type TopicConfigs = Readonly<Record<string, ConfigValue>>;

/** Kafka's legal topic characters; the name length limit is Kafka's (249). */
const TOPIC_NAME_LENGTH_MAX = 249;
const TOPIC_NAME_PATTERN = /^[a-zA-Z0-9._-]+$/;
/** Upper bound on config overrides per topic: one per known key. */
const CONFIG_VALUE_STRING_LENGTH_MAX = 64;

interface LongSpec { readonly kind: 'long'; readonly min: number; readonly default: number }
interface BooleanSpec { readonly kind: 'boolean'; readonly default: boolean }
interface EnumSpec { readonly kind: 'enum'; readonly values: readonly string[]; readonly refused: readonly string[]; readonly default: string }
type ConfigSpec = LongSpec | BooleanSpec | EnumSpec;

export const topicConfigSpecs: Readonly<Record<string, ConfigSpec>> = {
  'retention.ms': { kind: 'long', min: -1, default: 604_800_000 },
  'retention.bytes': { kind: 'long', min: -1, default: -1 },
  // Kafka's floor is the size of the smallest legacy record (14 bytes).
  'segment.bytes': { kind: 'long', min: 14, default: 1_073_741_824 },
  'segment.ms': { kind: 'long', min: 1, default: 604_800_000 },
  'min.insync.replicas': { kind: 'long', min: 1, default: 1 },
  'cleanup.policy': { kind: 'enum', values: ['delete'], refused: ['compact'], default: 'delete' },
  'unclean.leader.election.enable': { kind: 'boolean', default: false },
  'max.message.bytes': { kind: 'long', min: 0, default: 1_048_588 },
  'message.timestamp.type': { kind: 'enum', values: ['CreateTime', 'LogAppendTime'], refused: [], default: 'CreateTime' },
  // Kafka's default is Long.MAX_VALUE (leave flushing to the OS); the largest exact JS integer.
  'flush.ms': { kind: 'long', min: 0, default: Number.MAX_SAFE_INTEGER },
};

/** The full typed view of a topic's configs: overrides over Kafka's defaults. */
export interface EffectiveTopicConfig {
  readonly 'retention.ms': number;
  readonly 'retention.bytes': number;
  readonly 'segment.bytes': number;
  readonly 'segment.ms': number;
  readonly 'min.insync.replicas': number;
  readonly 'cleanup.policy': 'delete';
  readonly 'unclean.leader.election.enable': boolean;
  readonly 'max.message.bytes': number;
  readonly 'message.timestamp.type': 'CreateTime' | 'LogAppendTime';
  readonly 'flush.ms': number;
}

export function validateTopicName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name.length === 0) {
    throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', 'the name is empty');
  }
  if (name.length > TOPIC_NAME_LENGTH_MAX) {
    throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', `the name is longer than ${TOPIC_NAME_LENGTH_MAX} characters`);
  }
  if (name === '.' || name === '..') {
    throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', `'${name}' is not allowed`);
  }
  if (!TOPIC_NAME_PATTERN.test(name)) {
    throw new DriftwoodError('INVALID_TOPIC_EXCEPTION', `'${name}' may contain only ASCII letters, digits, '.', '_' and '-'`);
  }
}

/** Kafka refuses two topics whose names differ only by '.' versus '_' (metric names collide). */
export function topicNameCollisionKey(name: string): string {
  return name.replaceAll('.', '_');
}

function validateLong(key: string, spec: LongSpec, value: unknown): number {
  let parsed: number = Number.NaN;
  if (typeof value === 'number') parsed = value;
  else if (typeof value === 'string' && /^-?[0-9]{1,16}$/.test(value)) parsed = Number(value);
  if (!Number.isSafeInteger(parsed)) {
    throw new DriftwoodError('INVALID_CONFIG', `${key} must be an integer, got ${JSON.stringify(value)}`);
  }
  if (parsed < spec.min) {
    throw new DriftwoodError('INVALID_CONFIG', `${key} must be at least ${spec.min}, got ${parsed}`);
  }
  return parsed;
}

function validateBoolean(key: string, value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new DriftwoodError('INVALID_CONFIG', `${key} must be true or false, got ${JSON.stringify(value)}`);
}

function validateEnum(key: string, spec: EnumSpec, value: unknown): string {
  if (typeof value === 'string' && spec.refused.includes(value)) {
    throw new DriftwoodError('INVALID_CONFIG', `${key}=${value} is not supported yet`);
  }
  if (typeof value !== 'string' || !spec.values.includes(value)) {
    const shown = typeof value === 'string' ? value.slice(0, CONFIG_VALUE_STRING_LENGTH_MAX) : JSON.stringify(value);
    throw new DriftwoodError('INVALID_CONFIG', `${key} must be one of ${spec.values.join(', ')}, got ${shown}`);
  }
  return value;
}

function validateValue(key: string, value: unknown): ConfigValue {
  const spec = topicConfigSpecs[key];
  if (spec === undefined) throw new DriftwoodError('INVALID_CONFIG', `unknown topic config ${key.slice(0, CONFIG_VALUE_STRING_LENGTH_MAX)}`);
  switch (spec.kind) {
    case 'long': return validateLong(key, spec, value);
    case 'boolean': return validateBoolean(key, value);
    case 'enum': return validateEnum(key, spec, value);
  }
}

/**
 * Validates user-given overrides and normalizes them to typed values. Refuses unknown keys
 * and bad values with INVALID_CONFIG naming the key. The result has sorted keys.
 */
export function validateTopicConfigs(input: Readonly<Record<string, unknown>>): Record<string, ConfigValue> {
  const keys = Object.keys(input).sort();
  const result: Record<string, ConfigValue> = {};
  for (const key of keys) {
    result[key] = validateValue(key, input[key]);
  }
  assert.equal(Object.keys(result).length, keys.length);
  return result;
}

/** True when the overrides are exactly what validateTopicConfigs would produce (for the log). */
export function isValidStoredConfigs(configs: Readonly<Record<string, unknown>>): boolean {
  for (const [key, value] of Object.entries(configs)) {
    try {
      if (validateValue(key, value) !== value) return false;
    } catch {
      return false;
    }
  }
  return true;
}

export function effectiveTopicConfig(overrides: TopicConfigs): EffectiveTopicConfig {
  const merged: Record<string, ConfigValue> = {};
  for (const [key, spec] of Object.entries(topicConfigSpecs)) {
    merged[key] = overrides[key] ?? spec.default;
  }
  assert.equal(Object.keys(merged).length, Object.keys(topicConfigSpecs).length);
  return merged as unknown as EffectiveTopicConfig;
}
