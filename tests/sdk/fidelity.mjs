// fidelity.mjs — the official Anthropic TypeScript SDK, unchanged, against
// bin/llmfleet-fakeapi. Checks that the fake's successes parse and that its
// errors map to the SDK's error classes (BadRequestError, AuthenticationError,
// RateLimitError with retry-after), and that its Message Batches endpoints
// serve the SDK's batches API (create, retrieve, results, list, cancel).
//
// usage: node fidelity.mjs BASE_URL   (run.sh starts the fake API with
//        --api-key test-key --rpm 3 and passes its URL)
// Prints one line per check, then "N passed, M failed"; exits 1 on failure.
import Anthropic from '@anthropic-ai/sdk';

const baseURL = process.argv[2] ?? process.env.FAKEAPI_URL;
if (!baseURL) {
  console.error('usage: node fidelity.mjs BASE_URL');
  process.exit(2);
}

const MODEL = 'claude-sonnet-4-6';
const PROMPT = [{ role: 'user', content: 'Say hello to the fleet.' }];
const client = new Anthropic({ apiKey: 'test-key', baseURL, maxRetries: 0 });

let passed = 0;
let failed = 0;

// Run one named check: fn throws (or returns a message) on failure.
async function check(name, fn) {
  try {
    const problem = await fn();
    if (problem) throw new Error(problem);
    passed++;
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err?.message ?? err}`);
  }
}

// Expect promise to reject with an instance of cls and this status.
async function expectError(promise, cls, status) {
  try {
    await promise;
  } catch (err) {
    if (!(err instanceof cls)) return { problem: `got ${err?.constructor?.name}: ${err?.message}` };
    if (err.status !== status) return { problem: `status ${err.status}, want ${status}` };
    return { err };
  }
  return { problem: `no error, want ${cls.name}` };
}

await check('success parses as a Message', async () => {
  const msg = await client.messages.create({ model: MODEL, max_tokens: 64, messages: PROMPT });
  if (msg.type !== 'message') return `type ${msg.type}`;
  if (typeof msg.usage?.input_tokens !== 'number') return 'usage.input_tokens is not a number';
  if (msg.content?.[0]?.type !== 'text') return `content[0].type ${msg.content?.[0]?.type}`;
  return null;
});

await check('max_tokens: 0 throws BadRequestError (400)', async () => {
  const r = await expectError(
    client.messages.create({ model: MODEL, max_tokens: 0, messages: PROMPT }),
    Anthropic.BadRequestError, 400);
  return r.problem ?? null;
});

await check('a wrong key throws AuthenticationError (401)', async () => {
  const bad = new Anthropic({ apiKey: 'wrong-key', baseURL, maxRetries: 0 });
  const r = await expectError(
    bad.messages.create({ model: MODEL, max_tokens: 16, messages: PROMPT }),
    Anthropic.AuthenticationError, 401);
  return r.problem ?? null;
});

await check('exceeding rpm throws RateLimitError (429) with retry-after', async () => {
  // The server allows 3 requests a minute; one was used above.
  for (let i = 0; i < 10; i++) {
    try {
      await client.messages.create({ model: MODEL, max_tokens: 16, messages: PROMPT });
    } catch (err) {
      if (!(err instanceof Anthropic.RateLimitError)) {
        return `got ${err?.constructor?.name}: ${err?.message}`;
      }
      if (err.status !== 429) return `status ${err.status}`;
      const ra = err.headers?.get('retry-after');
      if (!ra || !(Number(ra) >= 1)) return `retry-after ${JSON.stringify(ra)}`;
      return null;
    }
  }
  return 'no 429 after 10 requests';
});

// Message Batches (run.sh starts the fake with --batch-ms 300).
const breq = (id, text, model = MODEL) => ({
  custom_id: id,
  params: { model, max_tokens: 32, messages: [{ role: 'user', content: text }] },
});
let batchId;
await check('batches.create returns an in_progress MessageBatch', async () => {
  const b = await client.messages.batches.create({
    requests: [breq('one', 'first'), breq('two', 'second'), breq('bad', 'x', 'nope')],
  });
  batchId = b.id;
  if (!b.id.startsWith('msgbatch_')) return `id ${b.id}`;
  if (b.processing_status !== 'in_progress') return `status ${b.processing_status}`;
  if (b.request_counts.processing !== 3) return `counts ${JSON.stringify(b.request_counts)}`;
  return null;
});

await check('batches.retrieve until ended, then results() streams every line', async () => {
  const deadline = Date.now() + 10000;
  let b;
  while ((b = await client.messages.batches.retrieve(batchId)).processing_status !== 'ended') {
    if (Date.now() > deadline) return 'not ended within 10 s';
    await new Promise((r) => setTimeout(r, 100));
  }
  if (b.request_counts.succeeded !== 2 || b.request_counts.errored !== 1)
    return `counts ${JSON.stringify(b.request_counts)}`;
  const got = {};
  for await (const line of await client.messages.batches.results(batchId)) got[line.custom_id] = line.result;
  if (Object.keys(got).sort().join() !== 'bad,one,two') return `ids ${Object.keys(got)}`;
  if (got.one.type !== 'succeeded' || got.one.message.usage.output_tokens < 1) return 'one not a message';
  if (got.bad.type !== 'errored' || got.bad.error.error.type !== 'not_found_error')
    return `bad: ${JSON.stringify(got.bad)}`;
  return null;
});

await check('batches.list pages and batches.cancel answers canceling', async () => {
  const other = await client.messages.batches.create({ requests: [breq('later', 'x')] });
  const c = await client.messages.batches.cancel(other.id);
  if (c.processing_status !== 'canceling' && c.processing_status !== 'ended')
    return `status ${c.processing_status}`;
  const ids = [];
  for await (const b of client.messages.batches.list({ limit: 1 })) ids.push(b.id);
  if (ids.join() !== `${other.id},${batchId}`) return `list ${ids}`;
  return null;
});

await check('a bad custom_id throws BadRequestError (400)', async () => {
  const r = await expectError(client.messages.batches.create({ requests: [breq('no spaces', 'x')] }),
    Anthropic.BadRequestError, 400);
  return r.problem ?? null;
});

console.log(`${passed} passed, ${failed} failed`);
process.exit(failed === 0 ? 0 : 1);
