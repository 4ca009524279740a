// fleet.mjs — what the Node examples share: the fleet's key names from the
// environment (LLMFLEET_REDIS_URL, LLMFLEET_FLEET), a connection, and a
// result entry as JSON.
import Redis from 'ioredis';

export const REDIS_URL = process.env.LLMFLEET_REDIS_URL || 'redis://127.0.0.1:6379/0';
export const FLEET = process.env.LLMFLEET_FLEET || 'default';
export const JOBS = `llmfleet:{${FLEET}}:jobs`; // the {FLEET} hash tag is part of the name
export const RESULTS = `llmfleet:{${FLEET}}:results`;
const NUMBERS = new Set(['attempts', 'latency_ms', 'http_status', 'input_tokens', 'output_tokens',
  'cache_creation_input_tokens', 'cache_read_input_tokens']);

// redis://[user]:pass@host:port/db as ioredis takes it; unix:///path?db=N too.
export function connect(url) {
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
export function resultJson([streamId, flat]) {
  const out = { stream_id: streamId };
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const [k, v] = [flat[i], flat[i + 1]];
    if ((k === 'response' || k === 'meta') && v) out[k] = JSON.parse(v);
    else if (NUMBERS.has(k) && /^[0-9]+$/.test(v)) out[k] = Number(v);
    else out[k] = v;
  }
  return out;
}
