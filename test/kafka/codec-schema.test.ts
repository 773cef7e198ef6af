// Our message descriptions against Apache Kafka's own JSON schemas (vendored in schemas/, see
// its README for where each came from): for every API and every version we advertise, the
// same fields in the same order, with the same wire type, nullability, compact (flexible)
// encoding and tagged-field tags, and an advertised range inside Kafka's validVersions.
// Kafka never changes a released version's layout, so any schema that lists a version is
// authoritative for it. Struct type names are not compared: they never reach the wire.
import t from 'tap';
import { readFileSync } from 'node:fs';
import { apis } from '../../src/kafka/protocol/apis.js';
import { requestHeader, responseHeader } from '../../src/kafka/protocol/messages/header.js';
import { elementType, inVersions, isArrayType, parseVersions, type FieldSpec, type MessageSpec } from '../../src/kafka/protocol/spec.js';

interface KafkaField {
  readonly name: string;
  readonly type: string;
  readonly versions: string;
  readonly nullableVersions?: string;
  readonly taggedVersions?: string;
  readonly tag?: number;
  readonly flexibleVersions?: string;
  readonly default?: string | number | boolean;
  readonly fields?: readonly KafkaField[];
}

interface KafkaMessage {
  readonly apiKey?: number;
  readonly type: string;
  readonly name: string;
  readonly validVersions: string;
  readonly flexibleVersions?: string;
  readonly fields: readonly KafkaField[];
}

const PRIMITIVES = new Set(['int8', 'int16', 'uint16', 'int32', 'int64', 'float64', 'bool', 'uuid', 'string', 'bytes', 'records']);

/** Drops // comments (Kafka's schemas carry them) without touching "//" inside strings. */
function stripComments(text: string): string {
  let out = '';
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charAt(i);
    if (inString) {
      out += c;
      if (c === '\\') out += text.charAt(++i);
      else if (c === '"') inString = false;
    } else if (c === '"') {
      inString = true;
      out += c;
    } else if (c === '/' && text.charAt(i + 1) === '/') {
      while (i < text.length && text.charAt(i) !== '\n') i++;
      out += '\n';
    } else out += c;
  }
  return out;
}

function loadSchema(name: string): KafkaMessage {
  const text = readFileSync(new URL(`./schemas/${name}.json`, import.meta.url), 'utf8');
  return JSON.parse(stripComments(text)) as KafkaMessage;
}

function camel(name: string): string {
  return name.charAt(0).toLowerCase() + name.slice(1);
}

/** What a type looks like on the wire: a primitive, a struct, or an array of either. */
function shape(type: string): string {
  if (type.startsWith('[]')) return `[]${shape(type.slice(2))}`;
  return PRIMITIVES.has(type) ? type : 'struct';
}

/** Kafka's default for a field, in our value domain (int64 as bigint, "null" as null). */
function kafkaDefault(field: KafkaField): number | bigint | boolean | string | null {
  const given = field.default;
  switch (field.type) {
    case 'int64': return BigInt(given ?? 0);
    case 'int8': case 'int16': case 'uint16': case 'int32': return Number(given ?? 0);
    case 'float64': return Number(given ?? 0);
    case 'bool': return given === true || given === 'true';
    case 'string': return given === 'null' ? null : String(given ?? '');
    default: return null;
  }
}

function ourDefault(field: FieldSpec): number | bigint | boolean | string | null {
  if (field.default !== undefined) return field.default;
  switch (field.type) {
    case 'int64': return 0n;
    case 'bool': return false;
    case 'string': return '';
    default: return 0;
  }
}

interface Ctx { readonly version: number; readonly flexible: boolean }

function compact(field: { readonly flexibleVersions?: string }, ctx: Ctx): boolean {
  return field.flexibleVersions === undefined ? ctx.flexible : inVersions(field.flexibleVersions, ctx.version);
}

function tagged(field: { readonly taggedVersions?: string }, ctx: Ctx): boolean {
  return ctx.flexible && inVersions(field.taggedVersions, ctx.version);
}

function compareField(path: string, kafka: KafkaField, ours: FieldSpec, ctx: Ctx, problems: string[]): void {
  const { version } = ctx;
  if (camel(kafka.name) !== ours.name) problems.push(`${path}: named ${ours.name}, Kafka's is ${kafka.name}`);
  if (shape(kafka.type) !== shape(ours.type)) problems.push(`${path}: type ${ours.type}, Kafka's is ${kafka.type}`);
  const nullable = inVersions(kafka.nullableVersions, version);
  if (nullable !== inVersions(ours.nullableVersions, version)) problems.push(`${path}: nullable ${!nullable} in v${version}, Kafka's nullableVersions ${kafka.nullableVersions ?? 'none'}`);
  if (compact(kafka, ctx) !== compact(ours, ctx)) problems.push(`${path}: compact ${!compact(kafka, ctx)} in v${version}, Kafka's flexibleVersions ${kafka.flexibleVersions ?? 'of the message'}`);
  const isTagged = tagged(kafka, ctx);
  if (isTagged !== tagged(ours, ctx)) problems.push(`${path}: tagged ${!isTagged} in v${version}, Kafka's taggedVersions ${kafka.taggedVersions ?? 'none'}`);
  if (isTagged && kafka.tag !== ours.tag) problems.push(`${path}: tag ${ours.tag}, Kafka's is ${kafka.tag}`);
  // A tagged field equal to its default is left off the wire: the defaults must agree.
  if (isTagged && PRIMITIVES.has(kafka.type) && kafkaDefault(kafka) !== ourDefault(ours)) {
    problems.push(`${path}: default ${String(ourDefault(ours))}, Kafka's is ${String(kafkaDefault(kafka))}`);
  }
  const element = isArrayType(kafka.type) ? elementType(kafka.type) : kafka.type;
  if (!PRIMITIVES.has(element)) compareFields(path, kafka.fields ?? [], ours.fields ?? [], ctx, problems);
}

function compareFields(path: string, kafka: readonly KafkaField[], ours: readonly FieldSpec[], ctx: Ctx, problems: string[]): void {
  const theirs = kafka.filter((f) => inVersions(f.versions, ctx.version));
  const mine = ours.filter((f) => inVersions(f.versions, ctx.version));
  const count = Math.max(theirs.length, mine.length);
  for (let i = 0; i < count; i++) {
    const k = theirs[i];
    const o = mine[i];
    if (k === undefined || o === undefined) {
      problems.push(`${path}[${i}]: ours ${o?.name ?? 'missing'}, Kafka's ${k?.name ?? 'missing'} in v${ctx.version}`);
      continue;
    }
    compareField(`${path}.${o.name}`, k, o, ctx, problems);
  }
}

/** Every difference between our description and Kafka's schema at one version. */
function differences(kafka: KafkaMessage, ours: MessageSpec, version: number): string[] {
  const problems: string[] = [];
  const flexible = inVersions(kafka.flexibleVersions ?? 'none', version);
  if (!inVersions(kafka.validVersions, version)) problems.push(`${ours.name}: v${version} is outside Kafka's validVersions ${kafka.validVersions}`);
  if (flexible !== inVersions(ours.flexibleVersions, version)) problems.push(`${ours.name}: flexible ${!flexible} in v${version}, Kafka's flexibleVersions ${kafka.flexibleVersions ?? 'none'}`);
  if (kafka.name !== ours.name) problems.push(`${ours.name}: Kafka's name is ${kafka.name}`);
  if (kafka.apiKey !== undefined && kafka.apiKey !== ours.apiKey) problems.push(`${ours.name}: api key ${ours.apiKey}, Kafka's is ${kafka.apiKey}`);
  compareFields(ours.name, kafka.fields, ours.fields, { version, flexible }, problems);
  return problems;
}

function versionsOf(spec: MessageSpec): number[] {
  const { min, max } = parseVersions(spec.validVersions);
  return Array.from({ length: max - min + 1 }, (_, i) => min + i);
}

const described: MessageSpec[] = [requestHeader, responseHeader];
for (const { request, response } of apis.values()) described.push(request, response);

// The APIs the listener has to cover (issue 11): each must be described, and checked here.
const REQUIRED_API_KEYS = [0, 1, 2, 3, 8, 9, 10, 11, 12, 13, 14, 15, 16, 18, 19, 20, 22, 32];

void t.test('every required API is described and has a vendored Kafka schema', (t) => {
  t.same([...apis.keys()].sort((a, b) => a - b), REQUIRED_API_KEYS);
  for (const spec of described) t.equal(loadSchema(spec.name).name, spec.name, `schemas/${spec.name}.json`);
  t.end();
});

for (const spec of described) {
  void t.test(`${spec.name} v${spec.validVersions} matches Kafka's ${spec.name}.json`, { timeout: 10_000 }, (t) => {
    const kafka = loadSchema(spec.name);
    const { min, max } = parseVersions(kafka.validVersions);
    const ours = parseVersions(spec.validVersions);
    t.ok(ours.min >= min && ours.max <= max, `advertised ${spec.validVersions} within Kafka's ${kafka.validVersions}`);
    for (const version of versionsOf(spec)) t.same(differences(kafka, spec, version), [], `v${version} field by field`);
    t.end();
  });
}

// The comparison itself must see what it is for: mutate a real description and expect it named.
void t.test('the comparison catches a renamed, retyped, re-nulled, re-tagged or reordered field', (t) => {
  const kafka = loadSchema('FetchResponse');
  const spec = apis.get(1)?.response;
  t.ok(spec !== undefined);
  if (spec === undefined) return t.end();
  t.same(differences(kafka, spec, 12), [], 'the real description is clean');
  const topics = spec.fields.find((f) => f.name === 'responses');
  const partitions = topics?.fields?.find((f) => f.name === 'partitions');
  t.ok(partitions?.fields !== undefined);
  const mutate = (change: (fields: FieldSpec[]) => FieldSpec[]): MessageSpec => ({
    ...spec,
    fields: spec.fields.map((f) => f !== topics ? f : {
      ...f,
      fields: (f.fields ?? []).map((g) => g !== partitions ? g : { ...g, fields: change([...(g.fields ?? [])]) }),
    }),
  });
  const edit = (name: string, patch: Partial<FieldSpec>) => (fields: FieldSpec[]): FieldSpec[] => fields.map((f) => f.name === name ? { ...f, ...patch } : f);
  const cases: [string, MessageSpec, RegExp][] = [
    ['renamed', mutate(edit('highWatermark', { name: 'highWaterMark' })), /named highWaterMark, Kafka's is HighWatermark/],
    ['retyped', mutate(edit('logStartOffset', { type: 'int32' })), /type int32, Kafka's is int64/],
    ['not nullable', mutate(edit('records', { nullableVersions: 'none' })), /records: nullable false in v12/],
    ['wrong tag', mutate(edit('currentLeader', { tag: 5 })), /tag 5, Kafka's is 1/],
    ['untagged', mutate(edit('snapshotId', { taggedVersions: 'none' })), /snapshotId: tagged false in v12/],
    ['reordered', mutate((fields) => fields.reverse()), /named records, Kafka's is PartitionIndex/],
    ['missing', mutate((fields) => fields.slice(1)), /ours missing, Kafka's Records in v12/],
    ['not flexible', { ...spec, flexibleVersions: '13+' }, /flexible false in v12/],
  ];
  for (const [what, mutated, expected] of cases) t.match(differences(kafka, mutated, 12).join('\n'), expected, what);
  t.end();
});
