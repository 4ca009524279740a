// pickup.mjs — BullMQ's side of the pickup comparison (scripts/bench.sh,
// BENCH_ONLY=pickup): the same measurement as tests/bench/pickup.py for
// llmfleet. Two roles, two processes:
//   node pickup.mjs worker REDIS_URL QUEUE FAKE_URL API_KEY
//       a BullMQ Worker (concurrency 8) whose job POSTs the job's request to
//       the fake API's /v1/messages and returns the body;
//   node pickup.mjs producer REDIS_URL QUEUE N
//       N times: wait 20-80 ms (the fleet idle), add one job, wait until it
//       is completed (QueueEvents); prints {"n","p50_ms","p90_ms","p99_ms"}
//       of add -> completion seen by the producer.
import { Queue, QueueEvents, Worker } from 'bullmq';

const [role, redisUrl, queue, a4, a5] = process.argv.slice(2);
const u = new URL(redisUrl);
const connection = {
    host: u.hostname, port: Number(u.port || 6379),
    username: u.username || undefined,
    password: u.password ? decodeURIComponent(u.password) : undefined,
    db: Number((u.pathname || '/0').slice(1) || 0),
    maxRetriesPerRequest: null,
};
const request = { model: 'claude-sonnet-4-5', max_tokens: 8,
                  messages: [{ role: 'user', content: 'ping' }] };

if (role === 'worker') {
    const [fakeUrl, key] = [a4, a5];
    const w = new Worker(queue, async (job) => {
        const r = await fetch(fakeUrl + '/v1/messages', {
            method: 'POST',
            headers: { 'x-api-key': key, 'anthropic-version': '2023-06-01',
                       'content-type': 'application/json' },
            body: JSON.stringify(job.data.request),
        });
        return await r.text();
    }, { connection, concurrency: 8 });
    await w.waitUntilReady();
    console.log('ready');
    process.on('SIGTERM', async () => { await w.close(); process.exit(0); });
} else if (role === 'producer') {
    const n = Number(a4);
    const q = new Queue(queue, { connection });
    const qe = new QueueEvents(queue, { connection });
    await qe.waitUntilReady();
    const lat = [];
    for (let i = 0; i < n; i++) {
        await new Promise((r) => setTimeout(r, 20 + Math.random() * 60));
        const t0 = performance.now();
        const job = await q.add('j', { id: `pk-${i}`, request },
                                { removeOnComplete: 1000, removeOnFail: 1000 });
        await job.waitUntilFinished(qe, 5000);
        lat.push(performance.now() - t0);
    }
    lat.sort((x, y) => x - y);
    const at = (p) => Math.round(lat[Math.min(lat.length - 1, Math.floor(p * lat.length))] * 100) / 100;
    console.log(JSON.stringify({ n, p50_ms: at(0.5), p90_ms: at(0.9), p99_ms: at(0.99) }));
    await qe.close();
    await q.close();
    process.exit(0);
} else {
    console.error('usage: pickup.mjs worker|producer ...');
    process.exit(2);
}
