// Helpers shared by graphile.mjs and pgboss.mjs: command-line parsing, the JSON output lines,
// the drain wait and the pickup-latency loop. Each figure matches `duespark bench` (src/bench.rs):
// no-op jobs, bulk insert in statements of at most 5,000 jobs, and a drain that ends when the
// database shows no unfinished job, checked every 20 ms.

import { readFileSync } from "node:fs";
import { performance } from "node:perf_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import { parseArgs } from "node:util";

/** Jobs per bulk-insert call, the same as INSERT_CHUNK in src/bench.rs. */
export const INSERT_CHUNK = 5_000;

/** Interval of the drain check, the same as wait_until_drained in src/bench.rs. */
const DRAIN_CHECK_MS = 20;

export const FIGURES = ["insert", "drain", "latency"];

/** Options that both peer scripts accept, in node:util parseArgs form. */
const COMMON_OPTIONS = {
  "database-url": { type: "string" },
  jobs: { type: "string", default: "20000" },
  concurrency: { type: "string" },
  measure: { type: "string", default: FIGURES.join(",") },
  "drain-timeout-seconds": { type: "string", default: "600" },
  "skip-analyze": { type: "boolean", default: false },
  "latency-samples": { type: "string", default: "200" },
  "latency-warmup": { type: "string", default: "5" },
  "latency-pause-ms": { type: "string", default: "20" },
  "latency-jitter-ms": { type: "string", default: "0" },
  "latency-timeout-ms": { type: "string", default: "10000" },
  help: { type: "boolean", short: "h" },
};

export const COMMON_HELP = `Common options:
  --database-url URL          PostgreSQL database to use (default: $DATABASE_URL). The script drops
                              and recreates its own schema in it.
  --jobs N                    no-op jobs to insert and drain (default 20000)
  --measure LIST              comma-separated figures: insert,drain,latency (default all three)
  --drain-timeout-seconds S   fail when the drain takes longer (default 600)
  --skip-analyze              do not ANALYZE the jobs table between insert and drain
  --latency-samples N         jobs enqueued one at a time for the latency figure (default 200)
  --latency-warmup N          extra jobs run before the samples and not counted (default 5)
  --latency-pause-ms MS       pause after each job's handler starts, before the next enqueue
                              (default 20)
  --latency-jitter-ms MS      add a uniform random 0..MS to each pause (default 0)
  --latency-timeout-ms MS     fail when a single job is not picked up within MS (default 10000)`;

/** Parses a decimal integer option and rejects values below `minimum`. */
export function parseInteger(name, text, minimum) {
  if (!/^-?\d+$/.test(String(text))) {
    throw new Error(`--${name} must be an integer, got "${text}"`);
  }
  const value = Number(text);
  if (value < minimum) {
    throw new Error(`--${name} must be at least ${minimum}, got ${value}`);
  }
  return value;
}

/** Parses a decimal number option (integer or fraction) and rejects values below `minimum`. */
export function parseNumber(name, text, minimum) {
  const value = Number(text);
  if (text === undefined || text === "" || !Number.isFinite(value)) {
    throw new Error(`--${name} must be a number, got "${text}"`);
  }
  if (value < minimum) {
    throw new Error(`--${name} must be at least ${minimum}, got ${value}`);
  }
  return value;
}

/**
 * Parses process.argv with the common options plus `extraOptions`, and returns
 * `{ common, values }`: the checked common settings and the raw values of all options.
 * Prints `usage` and exits with status 0 on --help.
 */
export function parseCommandLine(extraOptions, usage) {
  const { values } = parseArgs({
    options: { ...COMMON_OPTIONS, ...extraOptions },
    allowPositionals: false,
    strict: true,
  });
  if (values.help) {
    process.stdout.write(`${usage}\n\n${COMMON_HELP}\n`);
    process.exit(0);
  }

  const databaseUrl = values["database-url"] ?? process.env.DATABASE_URL;
  if (!databaseUrl) {
    throw new Error(
      "missing database: pass --database-url postgres://user@host:5432/database or set DATABASE_URL",
    );
  }

  const measure = values.measure.split(",").map((figure) => figure.trim());
  for (const figure of measure) {
    if (!FIGURES.includes(figure)) {
      throw new Error(`--measure: unknown figure "${figure}", expected some of ${FIGURES.join(",")}`);
    }
  }

  const common = {
    databaseUrl,
    jobs: parseInteger("jobs", values.jobs, 1),
    measure: new Set(measure),
    analyze: !values["skip-analyze"],
    drainTimeoutMs: parseInteger("drain-timeout-seconds", values["drain-timeout-seconds"], 1) * 1000,
    latency: {
      samples: parseInteger("latency-samples", values["latency-samples"], 1),
      warmup: parseInteger("latency-warmup", values["latency-warmup"], 0),
      pauseMs: parseInteger("latency-pause-ms", values["latency-pause-ms"], 0),
      jitterMs: parseInteger("latency-jitter-ms", values["latency-jitter-ms"], 0),
      timeoutMs: parseInteger("latency-timeout-ms", values["latency-timeout-ms"], 1),
    },
  };
  return { common, values };
}

/** Returns the `version` field of an installed package in ./node_modules. */
export function installedVersion(packageName) {
  const url = new URL(`./node_modules/${packageName}/package.json`, import.meta.url);
  return JSON.parse(readFileSync(url, "utf8")).version;
}

/**
 * Prints one figure as one JSON line on stdout: system, version and figure name first, then
 * `fields` in their order, then the tuning settings of the run (`base.config`).
 */
export function printFigure(base, figure, fields) {
  const line = { system: base.system, version: base.version, figure, ...fields, config: base.config };
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

/** Splits `count` jobs into consecutive chunk sizes of at most INSERT_CHUNK. */
export function chunkSizes(count) {
  const sizes = [];
  for (let start = 0; start < count; start += INSERT_CHUNK) {
    sizes.push(Math.min(INSERT_CHUNK, count - start));
  }
  return sizes;
}

/**
 * Waits until `countUnfinished()` returns 0, calling it every 20 ms, and throws when
 * `timeoutMs` passes first.
 */
export async function waitUntilDrained(countUnfinished, timeoutMs) {
  const deadline = performance.now() + timeoutMs;
  for (;;) {
    const left = await countUnfinished();
    if (left === 0) {
      return;
    }
    if (performance.now() > deadline) {
      throw new Error(`${left} jobs were still unfinished after ${timeoutMs / 1000} s of drain`);
    }
    await sleep(DRAIN_CHECK_MS);
  }
}

/**
 * Registry of handler start times of latency jobs by sample number, so the enqueue loop can wait
 * for the job it has just added.
 */
export class PickupTracker {
  #waiting = new Map();

  /** Returns a promise of the handler start time (performance.now() ms) of `sample`. */
  expect(sample, timeoutMs) {
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.#waiting.delete(sample);
        reject(new Error(`latency job ${sample} was not picked up within ${timeoutMs} ms`));
      }, timeoutMs);
      this.#waiting.set(sample, (startedAt) => {
        clearTimeout(timer);
        resolve(startedAt);
      });
    });
  }

  /** Records the start of the handler for `sample`. Call it first thing in the handler. */
  started(sample) {
    const startedAt = performance.now();
    const resolve = this.#waiting.get(sample);
    if (resolve) {
      this.#waiting.delete(sample);
      resolve(startedAt);
    }
  }
}

/**
 * Measures pickup latency on an idle queue. For each job it takes the time from the start of
 * the `enqueue(sample)` call to the start of that job's handler, waits for that handler, then
 * pauses `pauseMs` (plus up to `jitterMs` at random) before the next enqueue. The first
 * `warmup` jobs are run the same way and left out of the figures.
 */
export async function measureLatency(settings, tracker, enqueue) {
  const { samples, warmup, pauseMs, jitterMs, timeoutMs } = settings;
  const latencies = [];
  for (let sample = 0; sample < warmup + samples; sample++) {
    const pickedUp = tracker.expect(sample, timeoutMs);
    const enqueueStart = performance.now();
    await enqueue(sample);
    const handlerStart = await pickedUp;
    if (sample >= warmup) {
      latencies.push(handlerStart - enqueueStart);
    }
    await sleep(pauseMs + Math.random() * jitterMs);
  }
  return summarizeLatencies(latencies);
}

/** Returns p50, p90, p99 and max of `latencies` (ms) with the nearest-rank percentile. */
export function summarizeLatencies(latencies) {
  const sorted = [...latencies].sort((a, b) => a - b);
  const percentile = (p) => sorted[Math.max(0, Math.ceil((p / 100) * sorted.length) - 1)];
  const round = (ms) => Math.round(ms * 100) / 100;
  return {
    samples: sorted.length,
    p50_ms: round(percentile(50)),
    p90_ms: round(percentile(90)),
    p99_ms: round(percentile(99)),
    max_ms: round(sorted[sorted.length - 1]),
  };
}

/** Returns jobs per second, rounded to a whole number. */
export function perSecond(jobs, seconds) {
  return Math.round(jobs / seconds);
}

/** Rounds seconds to milliseconds for output. */
export function roundSeconds(seconds) {
  return Math.round(seconds * 1000) / 1000;
}

/** Runs `main`, printing any error to stderr and exiting with status 1. */
export function runMain(main) {
  main().then(
    () => process.exit(0),
    (error) => {
      process.stderr.write(`${process.argv[1]}: ${error.stack ?? error}\n`);
      process.exit(1);
    },
  );
}
