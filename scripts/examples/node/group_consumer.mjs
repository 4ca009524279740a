#!/usr/bin/env node
// Share llmfleet results between consumers: XREADGROUP + XACK (ioredis).
//
//     node group_consumer.mjs [--group G] [--name C] [--start ID]
//                             [--claim-idle-ms MS] [--count N]
//
// Every consumer of a group gets its own share of llmfleet:{FLEET}:results:
// each entry goes to one of them, which prints it (JSONL, as consumer.mjs
// does, plus "consumer") and then XACKs it. Run as many as you like with the
// same --group and different --name.
//
// - The group is created (XGROUP CREATE .. MKSTREAM) when it does not exist,
//   reading after --start ("$", the default: results from now on; "0": all).
// - On start a consumer first takes back its own pending entries (those it
//   read but did not acknowledge before it stopped), then reads new ones.
// - Entries that another consumer read and left unacknowledged for
//   --claim-idle-ms (it died) are taken over with XAUTOCLAIM.
// - --count N exits after N results; SIGINT / SIGTERM stop it after the
//   current batch, everything printed acknowledged.
//
// Handling is at least once: an entry printed just before a crash, not yet
// acknowledged, is printed again after the restart. Make what you do with a
// result idempotent by its "id".
//
// Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0),
// LLMFLEET_FLEET (default "default").
import { hostname } from 'node:os';
import { parseArgs } from 'node:util';

import { REDIS_URL, RESULTS, connect, resultJson } from './fleet.mjs';

const { values: args } = parseArgs({
  options: {
    group: { type: 'string', default: 'printers' },
    name: { type: 'string', default: `${hostname()}:${process.pid}` },
    start: { type: 'string', default: '$' },
    'claim-idle-ms': { type: 'string', default: '60000' },
    count: { type: 'string', default: '0' },
  },
});
const want = Number(args.count);
const claimIdleMs = Number(args['claim-idle-ms']);

let stop = false;
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { stop = true; });

const redis = connect(REDIS_URL);
try {
  await redis.xgroup('CREATE', RESULTS, args.group, args.start, 'MKSTREAM');
} catch (e) {
  if (!String(e.message).includes('BUSYGROUP')) throw e; // it exists already: fine
}

let seen = 0;
// Print a batch, then acknowledge it: at least once.
async function handle(entries) {
  for (const [streamId, flat] of entries) {
    if (!flat) continue; // trimmed from the stream meanwhile
    const out = resultJson([streamId, flat]);
    out.consumer = args.name;
    process.stdout.write(JSON.stringify(out) + '\n');
    seen++;
  }
  if (entries.length) await redis.xack(RESULTS, args.group, ...entries.map((e) => e[0]));
}

// How many entries the next read may take (--count: no more than left).
const room = () => (want ? Math.min(500, want - seen) : 500);

// 1. Our own pending entries, from a previous run that did not ack.
while (!stop && room() > 0) {
  const reply = await redis.xreadgroup('GROUP', args.group, args.name, 'COUNT', room(),
    'STREAMS', RESULTS, '0');
  const entries = reply ? reply[0][1] : [];
  if (!entries.length) break;
  await handle(entries);
}

// 2. New entries, and now and then those a dead consumer left behind.
let nextClaim = 0;
while (!stop && room() > 0) {
  if (Date.now() >= nextClaim) {
    nextClaim = Date.now() + Math.max(claimIdleMs / 2, 100);
    let cursor = '0-0';
    while (room() > 0) {
      const [next, claimed] = await redis.xautoclaim(RESULTS, args.group, args.name,
        claimIdleMs, cursor, 'COUNT', room());
      await handle(claimed);
      cursor = next;
      if (cursor === '0-0') break;
    }
    if (room() === 0) break;
  }
  const reply = await redis.xreadgroup('GROUP', args.group, args.name, 'COUNT', room(),
    'BLOCK', 1000, 'STREAMS', RESULTS, '>');
  if (reply) await handle(reply[0][1]);
}
await redis.quit();
