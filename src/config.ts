// A node's settings, from (weakest first) a JSON config file, DRIFTWOOD_* environment
// variables and command-line flags. Every value is checked here, before anything is opened
// or written, and a bad one is a one-line INVALID_CONFIG error (the CLI exits with 2).
import { readFile } from 'node:fs/promises';
import { DriftwoodError } from '../storage/errors.js';
import type { NodeSecurity } from './http/security.js';
import { parseListen, parsePeers, type Peer } from './peers.js';

export interface NodeConfig {
  readonly id: number;
  readonly host: string;
  readonly port: number;
  readonly peers: readonly Peer[];
  readonly dataDir: string;
  /** Voting members of the metadata quorum; the other peers observe. Default: all peers. */
  readonly voters?: readonly number[];
  /** Bearer token and TLS (from flags only: secrets stay out of config files). Default: none. */
  readonly security?: NodeSecurity;
  /** The Kafka-protocol listener (--kafka-listen). Default: none, the node speaks only HTTP. */
  readonly kafka?: KafkaListenerConfig;
}

export interface KafkaListenerConfig {
  readonly host: string;
  readonly port: number;
  /** HOST:PORT Kafka clients are told to connect to (registered in the metadata). */
  readonly advertisedAddress: string;
  /**
   * Kafka's auto.create.topics.enable (--kafka-auto-create-topics): a Metadata request for a
   * missing topic that allows it creates the topic with the broker defaults. Absent: off.
   */
  readonly autoCreateTopics?: true;
}

/** The settings a source may give, as strings (flags and environment) or JSON values (file). */
export interface RawSettings {
  id?: unknown;
  listen?: unknown;
  peers?: unknown;
  data?: unknown;
  voters?: unknown;
  kafkaListen?: unknown;
  kafkaAdvertise?: unknown;
  kafkaAutoCreateTopics?: unknown;
}

const SETTINGS = ['id', 'listen', 'peers', 'data', 'voters', 'kafkaListen', 'kafkaAdvertise', 'kafkaAutoCreateTopics'] as const;
/** A config file larger than this is not a config file. */
const CONFIG_FILE_BYTES_MAX = 64 * 1024;

/** The variable of a setting: kafkaListen is DRIFTWOOD_KAFKA_LISTEN. */
function envName(setting: string): string {
  return `DRIFTWOOD_${setting.replace(/[A-Z]/g, (letter) => `_${letter}`).toUpperCase()}`;
}

/** The DRIFTWOOD_* variables that name settings: DRIFTWOOD_ID, DRIFTWOOD_LISTEN, DRIFTWOOD_KAFKA_LISTEN, ... */
export function settingsFromEnv(env: Readonly<Record<string, string | undefined>>): RawSettings {
  const settings: RawSettings = {};
  for (const name of SETTINGS) {
    const value = env[envName(name)];
    if (value !== undefined && value !== '') settings[name] = value;
  }
  return settings;
}

/** Reads a JSON config file: an object with any of id, listen, peers, data, voters, kafkaListen, kafkaAdvertise, kafkaAutoCreateTopics. */
export async function settingsFromFile(path: string): Promise<RawSettings> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (error) {
    throw new DriftwoodError('INVALID_CONFIG', `cannot read config file ${path}: ${(error as NodeJS.ErrnoException).code ?? String(error)}`);
  }
  if (text.length > CONFIG_FILE_BYTES_MAX) throw new DriftwoodError('INVALID_CONFIG', `config file ${path} is larger than ${CONFIG_FILE_BYTES_MAX} bytes`);
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (error) {
    throw new DriftwoodError('INVALID_CONFIG', `config file ${path} is not JSON: ${(error as Error).message}`);
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new DriftwoodError('INVALID_CONFIG', `config file ${path} must hold a JSON object`);
  const unknown = Object.keys(parsed).filter((key) => !(SETTINGS as readonly string[]).includes(key));
  if (unknown.length > 0) throw new DriftwoodError('INVALID_CONFIG', `config file ${path} has unknown settings: ${unknown.join(', ')} (known: ${SETTINGS.join(', ')})`);
  return parsed;
}

/** Merges the sources (later ones win) and checks the result. */
export function resolveConfig(...sources: RawSettings[]): NodeConfig {
  const merged: RawSettings = {};
  for (const source of sources) {
    for (const name of SETTINGS) if (source[name] !== undefined) merged[name] = source[name];
  }
  const id = integerSetting('id', merged.id);
  if (merged.peers === undefined) throw new DriftwoodError('INVALID_CONFIG', 'the peers list is missing (--peers 1@HOST:PORT,2@HOST:PORT,...)');
  const peers = parsePeers(stringSetting('peers', merged.peers));
  const self = peers.find((peer) => peer.id === id);
  // A node whose id is not in the peers list joins the running cluster those peers form, as a
  // broker that observes the metadata quorum without voting; nobody knows its address until it
  // registers it, so it must say where it listens.
  if (self === undefined && merged.listen === undefined) throw new DriftwoodError('INVALID_CONFIG', `node id ${id} is not in the peers list; to join the cluster as a new broker, give --listen HOST:PORT`);
  // Without --listen a node listens where its peers will look for it.
  const listen = self !== undefined && merged.listen === undefined ? { host: self.host, port: self.port } : parseListen(stringSetting('listen', merged.listen));
  if (self === undefined && listen.port === 0) throw new DriftwoodError('INVALID_CONFIG', `a joining node needs a fixed --listen port (its address is registered), got ${listen.host}:0`);
  if (merged.data === undefined) throw new DriftwoodError('INVALID_CONFIG', 'the data directory is missing (--data DIR)');
  const dataDir = stringSetting('data', merged.data);
  if (dataDir.trim() === '') throw new DriftwoodError('INVALID_CONFIG', 'the data directory is empty');
  const voters = merged.voters === undefined ? undefined : parseVoters(merged.voters, peers);
  const kafka = parseKafkaListener(merged);
  if (kafka !== undefined && kafka.port !== 0 && kafka.port === listen.port) throw new DriftwoodError('INVALID_CONFIG', `--kafka-listen and --listen both name port ${kafka.port}; the Kafka listener needs its own port`);
  return { id, host: listen.host, port: listen.port, peers, dataDir, ...(voters === undefined ? {} : { voters }), ...(kafka === undefined ? {} : { kafka }) };
}

/** Hosts that mean "every interface": a client cannot connect to them. */
const WILDCARD_HOSTS = new Set(['0.0.0.0', '::', '[::]', '*']);

function parseKafkaListener(merged: RawSettings): KafkaListenerConfig | undefined {
  const autoCreate = merged.kafkaAutoCreateTopics === undefined ? false : booleanSetting('kafkaAutoCreateTopics', merged.kafkaAutoCreateTopics);
  if (merged.kafkaListen === undefined) {
    if (merged.kafkaAdvertise !== undefined) throw new DriftwoodError('INVALID_CONFIG', '--kafka-advertise needs --kafka-listen HOST:PORT');
    if (autoCreate) throw new DriftwoodError('INVALID_CONFIG', '--kafka-auto-create-topics needs --kafka-listen HOST:PORT (only Kafka clients create topics on a metadata request)');
    return undefined;
  }
  const listener = parseKafkaAddresses(merged);
  return autoCreate ? { ...listener, autoCreateTopics: true } : listener;
}

function parseKafkaAddresses(merged: RawSettings): KafkaListenerConfig {
  const listen = parseAddress('--kafka-listen', stringSetting('kafkaListen', merged.kafkaListen));
  if (merged.kafkaAdvertise === undefined) {
    // The advertised address is registered and handed to every Kafka client, so it must be
    // one they can connect to.
    if (WILDCARD_HOSTS.has(listen.host)) throw new DriftwoodError('INVALID_CONFIG', `--kafka-listen ${listen.host}:${listen.port} listens on every interface; give --kafka-advertise HOST:PORT, the address Kafka clients connect to`);
    if (listen.port === 0) throw new DriftwoodError('INVALID_CONFIG', `--kafka-listen needs a fixed port (its address is registered), got ${listen.host}:0; or give --kafka-advertise HOST:PORT`);
    return { host: listen.host, port: listen.port, advertisedAddress: `${listen.host}:${listen.port}` };
  }
  const advertised = parseAddress('--kafka-advertise', stringSetting('kafkaAdvertise', merged.kafkaAdvertise));
  if (WILDCARD_HOSTS.has(advertised.host) || advertised.port === 0) throw new DriftwoodError('INVALID_CONFIG', `--kafka-advertise must be an address clients can connect to, got ${advertised.host}:${advertised.port}`);
  return { host: listen.host, port: listen.port, advertisedAddress: `${advertised.host}:${advertised.port}` };
}

function parseAddress(flag: string, text: string): { host: string; port: number } {
  try {
    return parseListen(text);
  } catch {
    throw new DriftwoodError('INVALID_CONFIG', `${flag} is HOST:PORT, got '${text}'`);
  }
}

function parseVoters(value: unknown, peers: readonly Peer[]): number[] {
  const items = Array.isArray(value) ? value : stringSetting('voters', value).split(',');
  const voters = items.map((item) => integerSetting('voters', typeof item === 'string' ? item.trim() : item));
  for (const voter of voters) {
    if (!peers.some((peer) => peer.id === voter)) throw new DriftwoodError('INVALID_CONFIG', `voter ${voter} is not in the peers list`);
  }
  if (voters.length === 0) throw new DriftwoodError('INVALID_CONFIG', 'the voter set is empty');
  return voters;
}

function integerSetting(name: string, value: unknown): number {
  const number = typeof value === 'string' && value.trim() !== '' ? Number(value) : value;
  if (typeof number !== 'number' || !Number.isSafeInteger(number) || number < 1) {
    throw new DriftwoodError('INVALID_CONFIG', `${name} must be an integer >= 1, got ${describe(value)}`);
  }
  return number;
}

/** A flag's presence is true; the environment and files say true or false. */
function booleanSetting(name: string, value: unknown): boolean {
  if (value === true || value === 'true') return true;
  if (value === false || value === 'false') return false;
  throw new DriftwoodError('INVALID_CONFIG', `${name} must be true or false, got ${describe(value)}`);
}

function stringSetting(name: string, value: unknown): string {
  if (typeof value !== 'string') throw new DriftwoodError('INVALID_CONFIG', `${name} must be a string, got ${describe(value)}`);
  return value;
}

function describe(value: unknown): string {
  return value === undefined ? 'nothing' : JSON.stringify(value);
}
