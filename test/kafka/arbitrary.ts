// fast-check values generated from a message description, for one version: only the fields
// that exist in it, nulls only where nullable, so a round trip must give them back unchanged.
import fc from 'fast-check';
import { elementType, inVersions, isArrayType, type FieldSpec, type MessageSpec, type Struct, type Value } from '../../src/kafka/protocol/spec.js';

const ITEMS_MAX = 3;

function primitive(type: string): fc.Arbitrary<Value> {
  switch (type) {
    case 'int8': return fc.integer({ min: -128, max: 127 });
    case 'int16': return fc.integer({ min: -32768, max: 32767 });
    case 'uint16': return fc.integer({ min: 0, max: 65535 });
    case 'int32': return fc.integer({ min: -(2 ** 31), max: 2 ** 31 - 1 });
    case 'int64': return fc.bigInt({ min: -(2n ** 63n), max: 2n ** 63n - 1n });
    case 'float64': return fc.double({ noNaN: true });
    case 'bool': return fc.boolean();
    case 'uuid': return fc.uint8Array({ minLength: 16, maxLength: 16 }).map((a) => Buffer.from(a));
    case 'string': return fc.string({ unit: 'grapheme', maxLength: 12 });
    case 'bytes':
    case 'records': return fc.uint8Array({ maxLength: 40 }).map((a) => Buffer.from(a));
    default: throw new Error(`no arbitrary for ${type}`);
  }
}

function valueOf(field: FieldSpec, type: string, version: number): fc.Arbitrary<Value> {
  let arb: fc.Arbitrary<Value>;
  if (isArrayType(type)) arb = fc.array(valueOf(field, elementType(type), version), { maxLength: ITEMS_MAX });
  else if (field.fields !== undefined) arb = structOf(field.fields, version);
  else arb = primitive(type);
  const nullable = type === field.type && inVersions(field.nullableVersions, version);
  return nullable ? fc.option(arb, { nil: null, freq: 4 }) : arb;
}

export function structOf(fields: readonly FieldSpec[], version: number): fc.Arbitrary<Struct> {
  const shape: Record<string, fc.Arbitrary<Value>> = {};
  for (const f of fields) if (inVersions(f.versions, version)) shape[f.name] = valueOf(f, f.type, version);
  // Plain objects, as the decoder makes (fc.record makes them without a prototype).
  return fc.record(shape).map((r) => ({ ...r }));
}

export function messageOf(spec: MessageSpec, version: number): fc.Arbitrary<Struct> {
  return structOf(spec.fields, version);
}

export function versionsOf(spec: MessageSpec): number[] {
  const [min, max] = spec.validVersions.split('-').map(Number);
  const out: number[] = [];
  for (let v = min!; v <= max!; v++) out.push(v);
  return out;
}
