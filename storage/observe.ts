// The observation ports: core code (raft driver, partition logs, replicas, controller) logs
// and records timings only through these, so it stays free of pino and prom-client and runs
// unchanged in the simulator. node-logger.ts binds Log to pino; node-metrics.ts turns
// DurationSink into prom-client histograms and reads the plain counters at scrape time.

/** Structured fields first, then a message, as pino takes them. */
export interface Log {
  debug(fields: Readonly<Record<string, unknown>>, message: string): void;
  info(fields: Readonly<Record<string, unknown>>, message: string): void;
  warn(fields: Readonly<Record<string, unknown>>, message: string): void;
  error(fields: Readonly<Record<string, unknown>>, message: string): void;
}

/** Where a timed operation reports how long it took (a histogram, for real). */
export interface DurationSink {
  observeMs(durationMs: number): void;
}

const ignore = (): void => undefined;

/** A Log that drops everything (tests, the simulator, tools). */
export const silentLog: Log = { debug: ignore, info: ignore, warn: ignore, error: ignore };

/** A DurationSink that drops everything. */
export const ignoredDurations: DurationSink = { observeMs: ignore };
