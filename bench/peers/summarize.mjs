#!/usr/bin/env node
// Reads the JSON lines of run.sh, graphile.mjs or pgboss.mjs on stdin. For each system, figure and
// configuration it prints one line with the median over the rounds and the value of each round.
//
// Usage: bash run.sh > results.jsonl && node summarize.mjs < results.jsonl

import { createInterface } from "node:readline";

function median(values) {
  const sorted = [...values].sort((a, b) => a - b);
  const middle = Math.floor(sorted.length / 2);
  return sorted.length % 2 === 1 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}

/** Rounds to two decimals, so the median of an even count prints without float noise. */
function round(value) {
  return Math.round(value * 100) / 100;
}

function groupKey(line) {
  const config = JSON.stringify({
    concurrency: line.concurrency,
    batch: line.batch,
    ...line.config,
    pause_ms: line.pause_ms,
    jitter_ms: line.jitter_ms,
  });
  return `${line.system} ${line.version} ${line.figure} ${config}`;
}

async function main() {
  const groups = new Map();
  for await (const text of createInterface({ input: process.stdin })) {
    if (!text.startsWith("{")) {
      continue;
    }
    const line = JSON.parse(text);
    const key = groupKey(line);
    if (!groups.has(key)) {
      groups.set(key, []);
    }
    groups.get(key).push(line);
  }

  for (const [key, lines] of groups) {
    const rounds = lines.length;
    if (lines[0].figure === "latency") {
      const field = (name) => `${name} ${round(median(lines.map((line) => line[name])))}`;
      const medians = ["p50_ms", "p90_ms", "p99_ms", "max_ms"].map(field).join(", ");
      const runs = lines.map((line) => round(line.p50_ms)).join(" / ");
      process.stdout.write(`${key}: median of ${rounds} rounds: ${medians} (p50 of each round: ${runs})\n`);
    } else {
      const rates = lines.map((line) => line.jobs_per_second);
      const rate = Math.round(median(rates));
      process.stdout.write(`${key}: median ${rate} jobs/s over ${rounds} rounds (${rates.map(Math.round).join(" / ")})\n`);
    }
  }
}

main();
