#!/usr/bin/env node
// Measures Graphile Worker (graphile-worker on npm, the version pinned in package.json) with the
// figures of `duespark bench`, on the same PostgreSQL, so the two can be compared side by side:
//
//   insert   Bulk insert of --jobs no-op jobs with WorkerUtils.addJobs, at most 5,000 jobs per
//            call (one add_jobs() statement per call), in jobs/s.
//   drain    An in-process worker pool from run() runs the waiting no-op jobs. The time runs from
//            the run() call until the jobs table is empty, because Graphile Worker deletes
//            completed jobs. The table is checked every 20 ms, as src/bench.rs does. In jobs/s.
//   latency  Single jobs added with WorkerUtils.addJob on an idle queue, one at a time. Each
//            sample is the time from the start of the addJob call to the start of the task
//            handler in the same process. LISTEN/NOTIFY wakes the worker. p50/p90/p99/max in ms.
//
// The defaults start from the configuration of Graphile Worker's performance page
// (https://worker.graphile.org/docs/performance): concurrentJobs 24, maxPoolSize 25,
// localQueue.size 500, completeJobBatchDelay 0 and failJobBatchDelay 0. Only localQueue.size
// differs: 2,000 drained 20,000 jobs at about 34,000 jobs/s against about 29,000 with 500, in a
// sweep on a shared 2-core machine with PostgreSQL 15 on the same host (medians of 4 runs). Sizes
// 2,000 and 5,000 with concurrency 8 or 24 all drained at 34,000 to 35,000 jobs/s, while single
// runs spread by about 15 %. Without local queue and batched completion the drain was about 1,900
// jobs/s.
//
// The script runs ANALYZE on the jobs table between insert and drain, as pgboss.mjs does, and
// --skip-analyze turns that off. It made no visible difference for Graphile Worker. It drops
// and recreates its schema (--schema, default graphile_worker) in the given database, so never
// point it at a database whose Graphile Worker jobs matter.
//
// Usage: npm ci && node graphile.mjs --database-url postgres://postgres@127.0.0.1:5432/db
// Output: one JSON object per line and figure on stdout. Warnings and errors go to stderr.

import pg from "pg";
import { Logger, makeWorkerUtils, run, runMigrations } from "graphile-worker";

import {
  chunkSizes,
  installedVersion,
  measureLatency,
  parseCommandLine,
  parseInteger,
  perSecond,
  PickupTracker,
  printFigure,
  roundSeconds,
  runMain,
  waitUntilDrained,
} from "./common.mjs";

const SYSTEM = "graphile-worker";

const USAGE = `Usage: node graphile.mjs --database-url URL [options]

Graphile Worker options:
  --concurrency C                  concurrentJobs of the worker pool (default 24)
  --local-queue-size N             localQueue.size; 0 or 1 turns the local queue off (default 2000)
  --complete-job-batch-delay MS    completeJobBatchDelay; -1 turns batched completion off
                                   (write it as --complete-job-batch-delay=-1) (default 0)
  --fail-job-batch-delay MS        failJobBatchDelay; -1 turns batched failure off
                                   (write it as --fail-job-batch-delay=-1) (default 0)
  --max-pool-size N                PostgreSQL connections of the worker pool
                                   (default: concurrency + 1, at least 10)
  --poll-interval MS               pollInterval; new jobs are found through LISTEN/NOTIFY, the
                                   poll is the fallback (default 2000)
  --schema NAME                    schema to drop and recreate (default graphile_worker)`;

const EXTRA_OPTIONS = {
  "local-queue-size": { type: "string", default: "2000" },
  "complete-job-batch-delay": { type: "string", default: "0" },
  "fail-job-batch-delay": { type: "string", default: "0" },
  "max-pool-size": { type: "string" },
  "poll-interval": { type: "string", default: "2000" },
  schema: { type: "string", default: "graphile_worker" },
};

/** Writes Graphile Worker's warnings and errors to stderr and drops info and debug messages. */
const logger = new Logger(() => (level, message) => {
  if (level === "error" || level === "warning") {
    process.stderr.write(`graphile-worker ${level}: ${message}\n`);
  }
});

function parseSettings() {
  const { common, values } = parseCommandLine(EXTRA_OPTIONS, USAGE);
  const concurrency = parseInteger("concurrency", values.concurrency ?? "24", 1);
  const localQueueSize = parseInteger("local-queue-size", values["local-queue-size"], 0);
  const settings = {
    ...common,
    concurrency,
    localQueueSize: localQueueSize > 1 ? localQueueSize : -1,
    completeJobBatchDelay: parseInteger(
      "complete-job-batch-delay",
      values["complete-job-batch-delay"],
      -1,
    ),
    failJobBatchDelay: parseInteger("fail-job-batch-delay", values["fail-job-batch-delay"], -1),
    maxPoolSize: parseInteger(
      "max-pool-size",
      values["max-pool-size"] ?? String(Math.max(10, concurrency + 1)),
      2,
    ),
    pollInterval: parseInteger("poll-interval", values["poll-interval"], 1),
    schema: values.schema,
  };
  if (!/^[a-z_][a-z0-9_]*$/.test(settings.schema)) {
    throw new Error(`--schema must be a lowercase SQL identifier, got "${settings.schema}"`);
  }
  return settings;
}

/** Returns the worker options of the Graphile Worker preset for `settings`. */
function workerPreset(settings) {
  return {
    connectionString: settings.databaseUrl,
    schema: settings.schema,
    logger,
    concurrentJobs: settings.concurrency,
    maxPoolSize: settings.maxPoolSize,
    pollInterval: settings.pollInterval,
    localQueue: { size: settings.localQueueSize },
    completeJobBatchDelay: settings.completeJobBatchDelay,
    failJobBatchDelay: settings.failJobBatchDelay,
  };
}

/** Starts an in-process worker pool that runs `taskList`, without cron and signal handlers. */
function startRunner(settings, taskList) {
  return run({
    preset: { worker: workerPreset(settings) },
    taskList,
    // An empty list keeps run() from reading a crontab file from the working directory.
    parsedCronItems: [],
    noHandleSignals: true,
  });
}

async function resetSchema(client, settings) {
  await client.query(`DROP SCHEMA IF EXISTS ${settings.schema} CASCADE`);
  await runMigrations({ preset: { worker: workerPreset(settings) }, parsedCronItems: [] });
}

async function insertJobs(utils, jobs) {
  for (const size of chunkSizes(jobs)) {
    const specs = Array.from({ length: size }, () => ({
      identifier: "noop",
      payload: {},
      maxAttempts: 3,
    }));
    await utils.addJobs(specs);
  }
}

async function measureDrain(client, settings) {
  const countUnfinished = async () => {
    // _private_jobs is the table behind the public jobs view; counting it skips the view's joins.
    const { rows } = await client.query(
      `SELECT count(*)::int AS left FROM ${settings.schema}._private_jobs`,
    );
    return rows[0].left;
  };

  const started = performance.now();
  const runner = await startRunner(settings, { noop: async () => {} });
  try {
    await waitUntilDrained(countUnfinished, settings.drainTimeoutMs);
    return (performance.now() - started) / 1000;
  } finally {
    await runner.stop();
  }
}

async function main() {
  const settings = parseSettings();
  const base = {
    system: SYSTEM,
    version: installedVersion("graphile-worker"),
    config: {
      local_queue_size: settings.localQueueSize,
      complete_job_batch_delay_ms: settings.completeJobBatchDelay,
      fail_job_batch_delay_ms: settings.failJobBatchDelay,
      max_pool_size: settings.maxPoolSize,
      poll_interval_ms: settings.pollInterval,
    },
  };

  const client = new pg.Client({ connectionString: settings.databaseUrl });
  await client.connect();
  // WorkerUtils gets its own small pool for adding jobs, as a separate producer process would.
  let utils;
  try {
    await resetSchema(client, settings);
    utils = await makeWorkerUtils({
      connectionString: settings.databaseUrl,
      schema: settings.schema,
      logger,
      maxPoolSize: 2,
    });

    if (settings.measure.has("insert") || settings.measure.has("drain")) {
      const started = performance.now();
      await insertJobs(utils, settings.jobs);
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
        await client.query(`ANALYZE ${settings.schema}._private_jobs`);
      }
      const seconds = await measureDrain(client, settings);
      printFigure(base, "drain", {
        jobs: settings.jobs,
        concurrency: settings.concurrency,
        seconds: roundSeconds(seconds),
        jobs_per_second: perSecond(settings.jobs, seconds),
      });
    }

    if (settings.measure.has("latency")) {
      const tracker = new PickupTracker();
      const runner = await startRunner(settings, {
        latency: async (payload) => tracker.started(payload.sample),
      });
      try {
        const summary = await measureLatency(settings.latency, tracker, (sample) =>
          utils.addJob("latency", { sample }, { maxAttempts: 3 }),
        );
        printFigure(base, "latency", {
          concurrency: settings.concurrency,
          ...summary,
          pause_ms: settings.latency.pauseMs,
          jitter_ms: settings.latency.jitterMs,
        });
      } finally {
        await runner.stop();
      }
    }
  } finally {
    await utils?.release();
    await client.end();
  }
}

runMain(main);
