// A strict reader of the Prometheus text exposition format (0.0.4), for tests: every line is
// a HELP, a TYPE, or a sample of a family declared by a TYPE before it; label values are
// quoted with escapes; values are floats or +Inf/-Inf/NaN. Anything else throws.
export interface Sample {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  readonly value: number;
}

export interface Exposition {
  /** Family name -> counter, gauge, histogram, summary or untyped. */
  readonly types: ReadonlyMap<string, string>;
  readonly samples: readonly Sample[];
}

const NAME = '[a-zA-Z_:][a-zA-Z0-9_:]*';
const SAMPLE = new RegExp(`^(${NAME})(?:\\{(.*)\\})? (\\S+)(?: -?\\d+)?$`);
const LABEL = /^([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"(?:,|$)/;
const TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

export function parsePrometheus(text: string): Exposition {
  const types = new Map<string, string>();
  const samples: Sample[] = [];
  for (const [index, line] of text.split('\n').entries()) {
    if (line.length === 0) continue;
    const fail = (why: string): never => { throw new Error(`line ${index + 1}: ${why}: ${line}`); };
    if (line.startsWith('# HELP ')) continue;
    if (line.startsWith('# TYPE ')) {
      const [name = '', type = ''] = line.slice(7).split(' ');
      if (!new RegExp(`^${NAME}$`).test(name) || !TYPES.has(type)) fail('bad TYPE');
      if (types.has(name)) fail('a family typed twice');
      types.set(name, type);
      continue;
    }
    if (line.startsWith('#')) continue;
    const match = SAMPLE.exec(line) ?? fail('not a sample');
    const [, name = '', labelText = '', valueText = ''] = match;
    const family = familyOf(name, types) ?? fail('a sample of no declared family');
    const labels: Record<string, string> = {};
    for (let rest = labelText; rest.length > 0;) {
      const label = LABEL.exec(rest) ?? fail('bad labels');
      labels[label[1] ?? ''] = (label[2] ?? '').replace(/\\n/g, '\n').replace(/\\"/g, '"').replace(/\\\\/g, '\\');
      rest = rest.slice(label[0].length);
    }
    // Prometheus parses values as Go's ParseFloat does: Inf and NaN in any case (prom-client
    // writes an event-loop lag with no samples yet as "Nan").
    const special = valueText.toLowerCase();
    const value = special === '+inf' || special === 'inf' ? Infinity : special === '-inf' ? -Infinity : Number(valueText);
    if (Number.isNaN(value) && special !== 'nan') fail('bad value');
    if (types.get(family) === 'histogram' && name.endsWith('_bucket') && labels.le === undefined) fail('a bucket without le');
    samples.push({ name, labels, value });
  }
  return { types, samples };
}

function familyOf(name: string, types: ReadonlyMap<string, string>): string | undefined {
  if (types.has(name)) return name;
  for (const suffix of ['_bucket', '_sum', '_count']) {
    const base = name.slice(0, -suffix.length);
    if (name.endsWith(suffix) && (types.get(base) === 'histogram' || types.get(base) === 'summary')) return base;
  }
  return undefined;
}

/** The sum of the samples named `name` whose labels include `labels` (undefined if none). */
export function sampleValue(exposition: Exposition, name: string, labels: Readonly<Record<string, string>> = {}): number | undefined {
  const matching = exposition.samples.filter((s) => s.name === name && Object.entries(labels).every(([key, value]) => s.labels[key] === value));
  return matching.length === 0 ? undefined : matching.reduce((sum, s) => sum + s.value, 0);
}
