#!/usr/bin/env node
// Push jobs onto an llmfleet queue with ioredis (npm ci in this folder).
//
//     node producer.mjs [-n N] [--prefix P] [--model M] [--max-tokens K]
//
// Each job is one JSON object LPUSHed onto llmfleet:{FLEET}:jobs; the
// workers send its "request" to POST /v1/messages unchanged and echo "meta"
// in the result. Ids must be unique forever (a job whose id already has a
// result is dropped), hence the default prefix carries the time.
//
// Environment: LLMFLEET_REDIS_URL (default redis://127.0.0.1:6379/0),
// LLMFLEET_FLEET (default "default"). Prints the pushed ids, one a line.
import { parseArgs } from 'node:util';

import { JOBS, REDIS_URL, connect } from './fleet.mjs';

const { values: args } = parseArgs({
  options: {
    count: { type: 'string', short: 'n', default: '10' },
    prefix: { type: 'string', default: `js-${Math.floor(Date.now() / 1000)}` },
    model: { type: 'string', default: 'claude-haiku-4-5' },
    'max-tokens': { type: 'string', default: '64' },
  },
});

const redis = connect(REDIS_URL);
const ids = [];
let pipe = redis.pipeline(); // one round trip per batch
for (let i = 1; i <= Number(args.count); i++) {
  const job = {
    id: `${args.prefix}-${i}`,
    request: {
      model: args.model,
      max_tokens: Number(args['max-tokens']),
      messages: [{ role: 'user', content: `Say something about the number ${i}.` }],
    },
    meta: { lang: 'node', n: i },
  };
  pipe.lpush(JOBS, JSON.stringify(job));
  ids.push(job.id);
  if (pipe.length >= 500) {
    await execOrThrow(pipe);
    pipe = redis.pipeline();
  }
}
await execOrThrow(pipe);
await redis.quit();
process.stdout.write(ids.map((id) => id + '\n').join(''));
console.error(`pushed ${ids.length} jobs to ${JOBS}`);

// A pipeline answers [err, result] per command: any error fails the run.
async function execOrThrow(p) {
  for (const [err] of await p.exec()) if (err) throw err;
}
