#!/usr/bin/env node
// Follow llmfleet results with XREAD BLOCK and print them as JSONL (ioredis).
//
//     node consumer.mjs [--from ID] [--count N] [--timeout S]
//
// Reads llmfleet:{FLEET}:results after stream id ID ("0", the default: from
// the beginning; "$": only results written from now on) and keeps following
// it. Each line is one result: its fields (README "Result format") with
// "response" and "meta" as JSON, the counts as numbers, and "stream_id", the
// entry's id: pass the last one to --from to resume where you stopped.
//
// --count N exits 0 after N results; --timeout S exits 1 when no result came
// for S seconds. SIGINT / SIGTERM stop it cleanly.
//
// Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0),
// LLMFLEET_FLEET (default "default").
import { parseArgs } from 'node:util';

import { REDIS_URL, RESULTS, connect, resultJson } from './fleet.mjs';

const { values: args } = parseArgs({
  options: {
    from: { type: 'string', default: '0' },
    count: { type: 'string', default: '0' },
    timeout: { type: 'string', default: '0' },
  },
});
const want = Number(args.count);
const timeoutMs = Number(args.timeout) * 1000;

let stop = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stop = true; });

const redis = connect(REDIS_URL);
let last = args.from;
if (last === '$') {
  // Resolve "$" once: XREAD BLOCK with "$" on every call would miss
  // whatever arrives between two calls.
  const newest = await redis.xrevrange(RESULTS, '+', '-', 'COUNT', 1);
  last = newest.length ? newest[0][0] : '0';
}

let seen = 0;
let status = 0;
let idleSince = Date.now();
loop: while (!stop) {
  // BLOCK 1000: wake up every second to look at the stop flag.
  const reply = await redis.xread('COUNT', 500, 'BLOCK', 1000, 'STREAMS', RESULTS, last);
  if (!reply) {
    if (timeoutMs && Date.now() - idleSince > timeoutMs) {
      console.error(`consumer: no result for ${args.timeout} s`);
      status = 1;
      break;
    }
    continue;
  }
  idleSince = Date.now();
  for (const [, entries] of reply) {
    for (const entry of entries) {
      process.stdout.write(JSON.stringify(resultJson(entry)) + '\n');
      last = entry[0];
      if (want && ++seen >= want) break loop;
    }
  }
}
await redis.quit();
process.exitCode = status;
