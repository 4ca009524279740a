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
import Redis from 'ioredis';

const REDIS_URL = process.env.LLMFLEET_REDIS_URL || 'redis://127.0.0.1:6379/0';
const FLEET = process.env.LLMFLEET_FLEET || 'default';
const RESULTS = `llmfleet:{${FLEET}}:results`;
const NUMBERS = new Set(['attempts', 'latency_ms', 'http_status', 'input_tokens', 'output_tokens',
  'cache_creation_input_tokens', 'cache_read_input_tokens']);

function connect(url) {
  let redis;
  if (url.startsWith('unix:')) {
    const u = new URL(url);
    redis = new Redis({ path: u.pathname, db: Number(u.searchParams.get('db') || 0) });
  } else {
    redis = new Redis(url);
  }
  // ioredis reconnects by itself (a command waits for up to 20 attempts,
  // about 10 s, then fails); say each new problem once.
  let last = '';
  redis.on('error', (e) => { if (e.message !== last) console.error(`redis: ${(last = e.message)}`); });
  return redis;
}

// One stream entry ([id, [field, value, ...]]) as an object: JSON fields
// parsed, counts as numbers.
function resultJson([streamId, flat]) {
  const out = { stream_id: streamId };
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [k, v] = [flat[i], flat[i + 1]];
    if ((k === 'response' || k === 'meta') && v) out[k] = JSON.parse(v);
    else if (NUMBERS.has(k) && /^[0-9]+$/.test(v)) out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}

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
