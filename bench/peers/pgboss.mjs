#!/usr/bin/env node
// Measures pg-boss (the version pinned in package.json, 10.x) with the figures of
// `duespark bench`, on the same PostgreSQL, so the two can be compared side by side:
//
//   insert   Bulk insert of --jobs no-op jobs with boss.insert(), at most 5,000 jobs per call (one
//            INSERT statement per call), in jobs/s.
//   drain    --concurrency in-process work() loops run the waiting no-op jobs. The time runs from
//            the first work() call until no job of the queue is in state created, retry or
//            active, checked every 20 ms as src/bench.rs does. In jobs/s.
//   latency  Single jobs sent with boss.send() on an idle queue, one at a time. Each sample is the
//            time from the start of the send call to the start of the handler in the same
//            process. p50/p90/p99/max in ms.
//
// How pg-boss 10 works, read from node_modules/pg-boss/src (manager.js, worker.js):
// - Each work() call starts one polling loop. A loop fetches up to --batch-size jobs in one
//   query, passes them to the handler as one array, then completes them in one query without
//   awaiting it. So up to concurrency x batch-size jobs are in flight.
// - After each fetch, with or without jobs, a loop sleeps for the rest of its polling interval,
//   unless that rest is 100 ms or less. pg-boss 10 rejects intervals below 0.5 s and has no
//   LISTEN/NOTIFY. So one loop runs at most batch-size jobs per interval, and a single job waits
//   for the next poll of some loop.
// - boss.notifyWorker() wakes a loop, but only from inside the same process. This script does
//   not call it, because producers usually run in other processes.
//
// The defaults, 4 loops x 5,000 jobs per fetch, drained 20,000 jobs fastest (about 40,000 jobs/s).
// The sweep covered 1 to 32 loops and 500 to 10,000 jobs per fetch, on a shared 2-core machine
// with PostgreSQL 15 on the same host. NOTE: with 20,000 jobs these loops fetch every job in their
// first poll, so the figure is one fetch and one completion per loop, not a steady rate. A
// steady drain cannot pass loops x batch-size / polling interval, which is 40,000 jobs/s here.
// 8 loops x 2,000 jobs, which need two polls for 20,000 jobs, drained at about 30,000 jobs/s.
//
// The script starts pg-boss with supervise and schedule off, so maintenance and cron do not run
// during the figures. It runs ANALYZE on the job table between insert and drain, and
// --skip-analyze turns that off. Without statistics on the new queue partition, the completion
// queries of several loops ran for seconds each on the same machine, and 4 loops x 2,000 jobs
// drained about 2,300 jobs/s instead of about 17,000. The script drops and recreates its schema
// (--schema, default pgboss) in the given database, so never point it at a database whose pg-boss
// jobs matter.
//
// Usage: npm ci && node pgboss.mjs --database-url postgres://postgres@127.0.0.1:5432/db
// Output: one JSON object per line and figure on stdout. Warnings and errors go to stderr.

import pg from "pg";
import PgBoss from "pg-boss";

import {
  chunkSizes,
  installedVersion,
  measureLatency,
  parseCommandLine,
  parseInteger,
  parseNumber,
  perSecond,
  PickupTracker,
  printFigure,
  roundSeconds,
  runMain,
  waitUntilDrained,
} from "./common.mjs";

const SYSTEM = "pg-boss";
const DRAIN_QUEUE = "bench";
const LATENCY_QUEUE = "bench_latency";

/** pg-boss 10 rejects a smaller pollingIntervalSeconds (POLICY.MIN_POLLING_INTERVAL_MS). */
const MIN_POLLING_INTERVAL_SECONDS = 0.5;

const USAGE = `Usage: node pgboss.mjs --database-url URL [options]

pg-boss options:
  --concurrency C                  work() loops in the process, each fetching its own batches
                                   (default 4)
  --batch-size N                   jobs per fetch of one loop, passed to one handler call
                                   (default 5000)
  --polling-interval-seconds S     pollingIntervalSeconds of each loop, at least 0.5 (default 0.5)
  --max-pool-size N                PostgreSQL connections of pg-boss (default: concurrency + 2,
                                   at least 10)
  --schema NAME                    schema to drop and recreate (default pgboss)`;

const EXTRA_OPTIONS = {
  "batch-size": { type: "string", default: "5000" },
  "polling-interval-seconds": { type: "string", default: String(MIN_POLLING_INTERVAL_SECONDS) },
  "max-pool-size": { type: "string" },
  schema: { type: "string", default: "pgboss" },
};

function parseSettings() {
  const { common, values } = parseCommandLine(EXTRA_OPTIONS, USAGE);
  const concurrency = parseInteger("concurrency", values.concurrency ?? "4", 1);
  const settings = {
    ...common,
    concurrency,
    batchSize: parseInteger("batch-size", values["batch-size"], 1),
    pollingIntervalSeconds: parseNumber(
      "polling-interval-seconds",
      values["polling-interval-seconds"],
      MIN_POLLING_INTERVAL_SECONDS,
    ),
    maxPoolSize: parseInteger(
      "max-pool-size",
      values["max-pool-size"] ?? String(Math.max(10, concurrency + 2)),
      2,
    ),
    schema: values.schema,
  };
  if (!/^[a-z_][a-z0-9_]*$/.test(settings.schema)) {
    throw new Error(`--schema must be a lowercase SQL identifier, got "${settings.schema}"`);
  }
  return settings;
}

/** Starts `settings.concurrency` work() loops on `queue` that pass each batch to `handler`. */
async function startWorkers(boss, settings, queue, handler) {
  const options = {
    batchSize: settings.batchSize,
    pollingIntervalSeconds: settings.pollingIntervalSeconds,
  };
  for (let index = 0; index < settings.concurrency; index++) {
    await boss.work(queue, options, handler);
  }
}

async function insertJobs(boss, jobs) {
  for (const size of chunkSizes(jobs)) {
    // retryLimit 2 gives 3 attempts, as max_attempts(3) in src/bench.rs.
    const batch = Array.from({ length: size }, () => ({ name: DRAIN_QUEUE, data: {}, retryLimit: 2 }));
    await boss.insert(batch);
  }
}

async function countJobs(client, settings, condition) {
  const { rows } = await client.query(
    `SELECT count(*)::int AS count FROM ${settings.schema}.job WHERE name = $1 AND ${condition}`,
    [DRAIN_QUEUE],
  );
  return rows[0].count;
}

async function measureDrain(boss, client, settings) {
  const started = performance.now();
  await startWorkers(boss, settings, DRAIN_QUEUE, async (jobs) => {
    for (const job of jobs) {
      noop(job.data);
    }
  });
  try {
    await waitUntilDrained(
      () => countJobs(client, settings, "state IN ('created', 'retry', 'active')"),
      settings.drainTimeoutMs,
    );
  } finally {
    await boss.offWork(DRAIN_QUEUE);
  }
  const seconds = (performance.now() - started) / 1000;

  const completed = await countJobs(client, settings, "state = 'completed'");
  if (completed !== settings.jobs) {
    throw new Error(
      `drain finished with ${completed} of ${settings.jobs} jobs completed; the rest failed or were cancelled`,
    );
  }
  return seconds;
}

function noop(_data) {}

async function main() {
  const settings = parseSettings();
  const base = {
    system: SYSTEM,
    version: installedVersion("pg-boss"),
    config: {
      batch_size: settings.batchSize,
      polling_interval_seconds: settings.pollingIntervalSeconds,
      max_pool_size: settings.maxPoolSize,
    },
  };

  const client = new pg.Client({ connectionString: settings.databaseUrl });
  await client.connect();
  let boss;
  try {
    await client.query(`DROP SCHEMA IF EXISTS ${settings.schema} CASCADE`);
    boss = new PgBoss({
      connectionString: settings.databaseUrl,
      schema: settings.schema,
      max: settings.maxPoolSize,
      migrate: true,
      supervise: false,
      schedule: false,
    });
    boss.on("error", (error) => {
      process.stderr.write(`pg-boss error: ${error.stack ?? error.message}\n`);
    });
    await boss.start();
    await boss.createQueue(DRAIN_QUEUE);
    await boss.createQueue(LATENCY_QUEUE);

    if (settings.measure.has("insert") || settings.measure.has("drain")) {
      const started = performance.now();
      await insertJobs(boss, settings.jobs);
      const seconds = (performance.now() - started) / 1000;
      if (settings.measure.has("insert")) {
        printFigure(base, "insert", {
          jobs: settings.jobs,
          seconds: roundSeconds(seconds),
          jobs_per_second: perSecond(settings.jobs, seconds),
        });
      }
    }

    if (settings.measure.has("drain")) {
      if (settings.analyze) {
        // The table is new, so it has no planner statistics until autovacuum analyzes it at some
        // point of the drain. Long-lived job tables have them, so give them before timing.
        await client.query(`ANALYZE ${settings.schema}.job`);
      }
      const seconds = await measureDrain(boss, client, settings);
      printFigure(base, "drain", {
        jobs: settings.jobs,
        concurrency: settings.concurrency,
        seconds: roundSeconds(seconds),
        jobs_per_second: perSecond(settings.jobs, seconds),
      });
    }

    if (settings.measure.has("latency")) {
      // NOTE: a loop sleeps the rest of its polling interval after the fetch that took the
      // previous job, so with the default 20 ms pause each job waits about interval - 20 ms
      // (p50 about 480 ms at 0.5 s). --latency-jitter-ms 500 spreads the enqueue times over the
      // interval instead (p50 about 250 ms in a run of 100 samples).
      const tracker = new PickupTracker();
      await startWorkers(boss, settings, LATENCY_QUEUE, async (jobs) => {
        for (const job of jobs) {
          tracker.started(job.data.sample);
        }
      });
      const summary = await measureLatency(settings.latency, tracker, (sample) =>
        boss.send(LATENCY_QUEUE, { sample }, { retryLimit: 2 }),
      );
      printFigure(base, "latency", {
        concurrency: settings.concurrency,
        ...summary,
        pause_ms: settings.latency.pauseMs,
        jitter_ms: settings.latency.jitterMs,
      });
    }
  } finally {
    await boss?.stop({ graceful: true, wait: true, timeout: 5000 });
    await client.end();
  }
}

runMain(main);
