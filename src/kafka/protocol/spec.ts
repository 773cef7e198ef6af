// The declarative description of a Kafka message, shaped like Kafka's own JSON definitions
// (clients/src/main/resources/common/message/*.json): the facts about the protocol live in
// data, and one generic codec (codec.ts) walks them for a version. Field names are Kafka's,
// in camelCase.
import assert from 'node:assert/strict';

/** A version range as Kafka writes it: "0+", "3-5", "7" or "none". */
export type Versions = string;

export type PrimitiveType = 'int8' | 'int16' | 'int32' | 'int64' | 'uint16' | 'float64' | 'bool' | 'uuid' | 'string' | 'bytes' | 'records';

export interface FieldSpec {
  readonly name: string;
  /** A primitive, "[]primitive", "[]StructName" or "StructName" (the last two with fields). */
  readonly type: string;
  readonly versions: Versions;
  readonly nullableVersions?: Versions;
  /** Versions in which the field travels in the tagged-field section, under `tag`. */
  readonly taggedVersions?: Versions;
  readonly tag?: number;
  /** Overrides the message's flexible versions for this field only (the header's ClientId). */
  readonly flexibleVersions?: Versions;
  readonly default?: number | bigint | boolean | string | null;
  readonly fields?: readonly FieldSpec[];
}

export interface MessageSpec {
  readonly apiKey: number;
  readonly type: 'request' | 'response' | 'header';
  readonly name: string;
  /** The versions driftwood handles (a subset of Kafka's validVersions). */
  readonly validVersions: Versions;
  readonly flexibleVersions: Versions;
  readonly fields: readonly FieldSpec[];
}

/** A decoded value: int64 is a bigint, uuid a 16-byte Buffer, bytes and records Buffers. */
export type Value = number | bigint | boolean | string | Buffer | null | readonly Value[] | Struct;
export interface Struct { readonly [name: string]: Value }

interface Range { readonly min: number; readonly max: number }
const NONE: Range = { min: 1, max: 0 };
const ranges = new Map<string, Range>();

export function parseVersions(versions: Versions): Range {
  const cached = ranges.get(versions);
  if (cached !== undefined) return cached;
  let range: Range;
  if (versions === 'none') range = NONE;
  else if (versions.endsWith('+')) range = { min: Number(versions.slice(0, -1)), max: Number.MAX_SAFE_INTEGER };
  else if (versions.includes('-')) {
    const [min, max] = versions.split('-');
    range = { min: Number(min), max: Number(max) };
  } else range = { min: Number(versions), max: Number(versions) };
  assert.ok(Number.isInteger(range.min), `bad version range ${versions}`);
  assert.ok(Number.isInteger(range.max), `bad version range ${versions}`);
  ranges.set(versions, range);
  return range;
}

export function inVersions(versions: Versions | undefined, version: number): boolean {
  if (versions === undefined) return false;
  const { min, max } = parseVersions(versions);
  return version >= min && version <= max;
}

export function isArrayType(type: string): boolean {
  return type.startsWith('[]');
}

export function elementType(type: string): string {
  assert.ok(isArrayType(type));
  return type.slice(2);
}
