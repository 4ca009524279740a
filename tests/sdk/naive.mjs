// naive.mjs — the baseline of scripts/bench-fleet.sh ("the incident"): N
// concurrent loops with the official SDK, as people write them. One client,
// default retries (maxRetries is not set: the SDK retries twice, honouring
// retry-after), each loop taking the next job from a shared in-process list
// and calling messages.create until the list is empty. A job whose call
// still throws after the SDK's retries counts as failed; nothing else
// retries it.
//
// usage: node naive.mjs JOBS.jsonl [CONCURRENCY]
//   env ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL (the fake API)
// JOBS.jsonl holds llmfleet jobs ({"id", "request", "meta"}); `request` is
// passed to messages.create as is. Prints one JSON line on stdout:
//   {"jobs","ok","failed","failures":{STATUS:N},"input_tokens",
//    "output_tokens","start_ms","empty_ms","end_ms"}
// start_ms / empty_ms / end_ms are Unix ms: first request, the moment the
// list ran out (the last job taken), the last loop done.
import { readFileSync } from 'node:fs';
import Anthropic from '@anthropic-ai/sdk';

const [file, concArg] = process.argv.slice(2);
if (!file) {
  console.error('usage: node naive.mjs JOBS.jsonl [CONCURRENCY]');
  process.exit(2);
}
const concurrency = Number(concArg ?? 8);
const apiKey = process.env.ANTHROPIC_API_KEY;
const baseURL = process.env.ANTHROPIC_BASE_URL;
if (!apiKey || !baseURL) {
  console.error('naive: set ANTHROPIC_API_KEY and ANTHROPIC_BASE_URL');
  process.exit(2);
}

const jobs = readFileSync(file, 'utf8').split('\n').filter((l) => l.trim()).map((l) => JSON.parse(l));
const total = jobs.length;
jobs.reverse();                         // pop() then takes them in file order

const client = new Anthropic({ apiKey, baseURL });
const out = {
  jobs: total, ok: 0, failed: 0, failures: {}, input_tokens: 0, output_tokens: 0,
  start_ms: Date.now(), empty_ms: 0, end_ms: 0,
};

async function loop() {
  let mine = { ok: 0, failed: 0 };
  for (;;) {
    const job = jobs.pop();
    if (!job) break;
    if (jobs.length === 0) out.empty_ms = Date.now();
    try {
      const msg = await client.messages.create(job.request);
      mine.ok++;
      out.input_tokens += msg.usage?.input_tokens ?? 0;
      out.output_tokens += msg.usage?.output_tokens ?? 0;
    } catch (err) {
      mine.failed++;
      const k = String(err?.status ?? err?.constructor?.name ?? 'error');
      out.failures[k] = (out.failures[k] ?? 0) + 1;
    }
  }
  return mine;
}

const loops = await Promise.all(Array.from({ length: concurrency }, loop));
for (const l of loops) {
  out.ok += l.ok;
  out.failed += l.failed;
}
out.end_ms = Date.now();
if (!out.empty_ms) out.empty_ms = out.end_ms;
console.log(JSON.stringify(out));
