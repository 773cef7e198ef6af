// The one generic encoder/decoder: it walks a MessageSpec for a version. Decoded structs hold
// exactly the fields that exist in that version (tagged ones absent from the input take their
// default); encoding takes a missing field as its default. Records travel as opaque Buffers.
import assert from 'node:assert/strict';
import { elementType, inVersions, isArrayType, type FieldSpec, type MessageSpec, type Struct, type Value } from './spec.js';
import { Reader, Writer, defaultDecodeLimits, type DecodeLimits } from './wire.js';

const UUID_BYTES = 16;
// Two-byte lengths of non-flexible strings: -1 is null, anything else negative is garbage.
const NULL_LENGTH = -1;

interface Ctx { readonly version: number; readonly flexible: boolean }

function fieldFlexible(field: FieldSpec, ctx: Ctx): boolean {
  return field.flexibleVersions === undefined ? ctx.flexible : inVersions(field.flexibleVersions, ctx.version);
}

function isTagged(field: FieldSpec, ctx: Ctx): boolean {
  return ctx.flexible && inVersions(field.taggedVersions, ctx.version);
}

// ---------------------------------------------------------------- defaults

export function defaultValue(field: FieldSpec, version: number, type = field.type): Value {
  if (field.default !== undefined && type === field.type) return field.default;
  if (type === field.type && inVersions(field.nullableVersions, version) && type === 'records') return null;
  if (isArrayType(type)) return [];
  if (field.fields !== undefined) return defaultStruct(field.fields, version);
  switch (type) {
    case 'int64': return 0n;
    case 'bool': return false;
    case 'string': return '';
    case 'uuid': return Buffer.alloc(UUID_BYTES);
    case 'bytes': return Buffer.alloc(0);
    case 'records': return null;
    default: return 0;
  }
}

function defaultStruct(fields: readonly FieldSpec[], version: number): Struct {
  const out: Record<string, Value> = {};
  for (const f of fields) if (inVersions(f.versions, version)) out[f.name] = defaultValue(f, version);
  return out;
}

function sameValue(a: Value, b: Value): boolean {
  if (Buffer.isBuffer(a) || Buffer.isBuffer(b)) return Buffer.isBuffer(a) && Buffer.isBuffer(b) && a.equals(b);
  if (Array.isArray(a) || Array.isArray(b)) {
    if (!Array.isArray(a) || !Array.isArray(b) || a.length !== b.length) return false;
    return a.every((item: Value, i) => sameValue(item, b[i] as Value));
  }
  if (typeof a === 'object' && a !== null && typeof b === 'object' && b !== null) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((k) => sameValue((a as Struct)[k] ?? null, (b as Struct)[k] ?? null));
  }
  return a === b;
}

// ---------------------------------------------------------------- encode

function writeLength(w: Writer, length: number, compact: boolean, short: boolean): void {
  if (compact) w.uvarint32(length + 1);
  else if (short) w.int16(length);
  else w.int32(length);
}

function writeValue(w: Writer, field: FieldSpec, type: string, value: Value, ctx: Ctx): void {
  const compact = fieldFlexible(field, ctx);
  const nullable = type === field.type && inVersions(field.nullableVersions, ctx.version);
  if (value === null) {
    assert.ok(nullable, `${field.name} is not nullable in version ${ctx.version}`);
    writeLength(w, NULL_LENGTH, compact, type === 'string');
    return;
  }
  if (isArrayType(type)) {
    assert.ok(Array.isArray(value), `${field.name} must be an array`);
    const items = value as readonly Value[];
    writeLength(w, items.length, compact, false);
    for (const item of items) writeValue(w, field, elementType(type), item, ctx);
    return;
  }
  if (field.fields !== undefined) {
    assert.ok(typeof value === 'object' && !Buffer.isBuffer(value), `${field.name} must be a struct`);
    writeStruct(w, field.fields, value as Struct, ctx);
    return;
  }
  writePrimitive(w, field, type, value, compact);
}

function writePrimitive(w: Writer, field: FieldSpec, type: string, value: Value, compact: boolean): void {
  switch (type) {
    case 'int8': w.int8(value as number); return;
    case 'int16': w.int16(value as number); return;
    case 'uint16': w.uint16(value as number); return;
    case 'int32': w.int32(value as number); return;
    case 'int64': w.int64(value as bigint); return;
    case 'float64': w.float64(value as number); return;
    case 'bool': assert.equal(typeof value, 'boolean', field.name); w.bool(value as boolean); return;
    case 'uuid':
      assert.ok(Buffer.isBuffer(value) && value.length === UUID_BYTES, `${field.name} must be a 16-byte uuid`);
      w.raw(value);
      return;
    case 'string': {
      assert.equal(typeof value, 'string', field.name);
      const bytes = Buffer.byteLength(value as string, 'utf8');
      writeLength(w, bytes, compact, true);
      w.utf8(value as string, bytes);
      return;
    }
    case 'bytes':
    case 'records':
      assert.ok(Buffer.isBuffer(value), `${field.name} must be a Buffer`);
      writeLength(w, value.length, compact, false);
      w.raw(value);
      return;
    default:
      assert.fail(`unknown type ${type} of ${field.name}`);
  }
}

function writeStruct(w: Writer, fields: readonly FieldSpec[], value: Struct, ctx: Ctx): void {
  const tagged: FieldSpec[] = [];
  for (const field of fields) {
    if (!inVersions(field.versions, ctx.version)) continue;
    const given = value[field.name];
    const v = given === undefined ? defaultValue(field, ctx.version) : given;
    if (isTagged(field, ctx)) {
      if (!sameValue(v, defaultValue(field, ctx.version))) tagged.push(field);
      continue;
    }
    writeValue(w, field, field.type, v, ctx);
  }
  if (ctx.flexible) writeTaggedFields(w, tagged, value, ctx);
}

function writeTaggedFields(w: Writer, tagged: FieldSpec[], value: Struct, ctx: Ctx): void {
  tagged.sort((a, b) => (a.tag ?? 0) - (b.tag ?? 0));
  w.uvarint32(tagged.length);
  for (const field of tagged) {
    assert.ok(field.tag !== undefined, `${field.name} is tagged without a tag`);
    const body = new Writer();
    const v = value[field.name];
    assert.ok(v !== undefined, `${field.name} was seen set`);
    writeValue(body, field, field.type, v, ctx);
    w.uvarint32(field.tag);
    w.uvarint32(body.length);
    for (const chunk of body.finishChunks()) w.raw(chunk);
  }
}

// ---------------------------------------------------------------- decode

function readLength(r: Reader, compact: boolean, short: boolean): number {
  if (compact) return r.uvarint32() - 1;
  return short ? r.int16() : r.int32();
}

const minBytesCache = new WeakMap<FieldSpec, Map<string, number>>();

// The fewest bytes one array item can take; with the remaining input it bounds an array's
// length before anything is allocated for it.
function minBytes(field: FieldSpec, type: string, ctx: Ctx): number {
  const key = `${type}/${ctx.version}/${ctx.flexible}`;
  let perField = minBytesCache.get(field);
  const cached = perField?.get(key);
  if (cached !== undefined) return cached;
  const compact = fieldFlexible(field, ctx);
  let bytes: number;
  if (isArrayType(type)) bytes = compact ? 1 : 4;
  else if (field.fields !== undefined) {
    bytes = ctx.flexible ? 1 : 0;
    for (const f of field.fields) {
      if (inVersions(f.versions, ctx.version) && !isTagged(f, ctx)) bytes += minBytes(f, f.type, ctx);
    }
  } else {
    const fixed: Record<string, number> = { int8: 1, bool: 1, int16: 2, uint16: 2, int32: 4, int64: 8, float64: 8, uuid: UUID_BYTES };
    bytes = fixed[type] ?? (compact ? 1 : type === 'string' ? 2 : 4);
  }
  if (perField === undefined) {
    perField = new Map<string, number>();
    minBytesCache.set(field, perField);
  }
  perField.set(key, bytes);
  return bytes;
}

function readNullableLength(r: Reader, field: FieldSpec, type: string, ctx: Ctx, limit: number): number | null {
  const length = readLength(r, fieldFlexible(field, ctx), type === 'string');
  if (length === NULL_LENGTH) {
    if (type === field.type && inVersions(field.nullableVersions, ctx.version)) return null;
    throw r.fail(`null in version ${ctx.version}, where it is not nullable`);
  }
  if (length < 0) throw r.fail(`negative length ${length}`);
  if (length > limit) throw r.fail(`length ${length} beyond the limit ${limit}`);
  return length;
}

function readValue(r: Reader, field: FieldSpec, type: string, ctx: Ctx): Value {
  if (isArrayType(type)) {
    const count = readNullableLength(r, field, type, ctx, r.limits.arrayItemsMax);
    if (count === null) return null;
    const item = elementType(type);
    if (count * minBytes(field, item, ctx) > r.remaining()) throw r.fail(`${count} items cannot fit in ${r.remaining()} bytes`);
    const items: Value[] = [];
    for (let i = 0; i < count; i++) items.push(readValue(r, field, item, ctx));
    return items;
  }
  if (field.fields !== undefined) return readStruct(r, field.fields, ctx);
  return readPrimitive(r, field, type, ctx);
}

function readPrimitive(r: Reader, field: FieldSpec, type: string, ctx: Ctx): Value {
  switch (type) {
    case 'int8': return r.int8();
    case 'int16': return r.int16();
    case 'uint16': return r.uint16();
    case 'int32': return r.int32();
    case 'int64': return r.int64();
    case 'float64': return r.float64();
    case 'bool': return r.bool();
    case 'uuid': return Buffer.from(r.slice(UUID_BYTES));
    case 'string': {
      const bytes = readNullableLength(r, field, type, ctx, r.limits.stringBytesMax);
      return bytes === null ? null : r.utf8(bytes);
    }
    case 'bytes':
    case 'records': {
      const bytes = readNullableLength(r, field, type, ctx, r.limits.bytesBytesMax);
      return bytes === null ? null : r.slice(bytes);
    }
    default:
      assert.fail(`unknown type ${type} of ${field.name}`);
  }
}

function readStruct(r: Reader, fields: readonly FieldSpec[], ctx: Ctx): Struct {
  const out: Record<string, Value> = {};
  for (const field of fields) {
    if (!inVersions(field.versions, ctx.version)) continue;
    if (isTagged(field, ctx)) {
      out[field.name] = defaultValue(field, ctx.version);
      continue;
    }
    r.path.push(field.name);
    out[field.name] = readValue(r, field, field.type, ctx);
    r.path.pop();
  }
  if (ctx.flexible) readTaggedFields(r, fields, out, ctx);
  return out;
}

function readTaggedFields(r: Reader, fields: readonly FieldSpec[], out: Record<string, Value>, ctx: Ctx): void {
  const count = r.uvarint32();
  if (count > r.limits.taggedFieldsMax) throw r.fail(`${count} tagged fields, beyond the limit ${r.limits.taggedFieldsMax}`);
  let lastTag = -1;
  for (let i = 0; i < count; i++) {
    const tag = r.uvarint32();
    if (tag <= lastTag) throw r.fail(`tagged field ${tag} after ${lastTag}: tags must ascend`);
    lastTag = tag;
    const size = r.uvarint32();
    if (size > r.remaining()) throw r.fail(`tagged field ${tag} of ${size} bytes, ${r.remaining()} left`);
    const body = r.sub(size);
    // Unknown tags are skipped: that is what lets a newer peer add tagged fields.
    const field = fields.find((f) => f.tag === tag && isTagged(f, ctx) && inVersions(f.versions, ctx.version));
    if (field === undefined) continue;
    body.path.push(field.name);
    out[field.name] = readValue(body, field, field.type, ctx);
    if (body.remaining() !== 0) throw body.fail(`${body.remaining()} bytes left over in the tagged field`);
  }
}

// ---------------------------------------------------------------- entry points

export function isFlexible(spec: MessageSpec, version: number): boolean {
  return inVersions(spec.flexibleVersions, version);
}

export function encodeInto(w: Writer, spec: MessageSpec, version: number, value: Struct): void {
  assert.ok(inVersions(spec.validVersions, version), `${spec.name} v${version} is not described`);
  writeStruct(w, spec.fields, value, { version, flexible: isFlexible(spec, version) });
}

export function encodeMessage(spec: MessageSpec, version: number, value: Struct): Buffer {
  const w = new Writer();
  encodeInto(w, spec, version, value);
  return w.finish();
}

/** Reads one struct of the spec from the reader (more may follow: a header, then a body). */
export function decodeFrom(r: Reader, spec: MessageSpec, version: number): Struct {
  assert.ok(inVersions(spec.validVersions, version), `${spec.name} v${version} is not described`);
  return readStruct(r, spec.fields, { version, flexible: isFlexible(spec, version) });
}

/** Decodes exactly one message: trailing bytes are an error, as truncation is. */
export function decodeMessage(spec: MessageSpec, version: number, buf: Buffer, limits: DecodeLimits = defaultDecodeLimits): Struct {
  const r = new Reader(buf, limits);
  const value = decodeFrom(r, spec, version);
  if (r.remaining() !== 0) throw r.fail(`${r.remaining()} trailing bytes after ${spec.name} v${version}`);
  return value;
}
