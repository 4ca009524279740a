/* main.c — `llmfleet SUBCOMMAND [options]`: settings from flags and the
 * environment, then the subcommand. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"
#include "log.h"
#include "opt.h"
#include "version.h"
#include "worker.h"

static const char *envOr(const char *name, const char *dflt) {
    const char *v = getenv(name);
    return v && *v ? v : dflt;
}

static void usage(void) {
    puts("usage: llmfleet COMMAND [options]\n\n"
         "commands:\n"
         "  worker            run a worker process\n"
         "  submit [FILE|-]   push JSONL jobs (--wait follows their results)\n"
         "  results           print results as JSONL (--follow, --out FILE)\n"
         "  wait FILE         follow a submitted file's results again (exit 1: one failed)\n"
         "  status            the fleet at a glance (--watch, --json)\n"
         "  limits show|set KEY=VALUE...   fleet-wide limits, stored in Redis\n"
         "  pause [--reason TEXT], resume  stop and restart dispatching\n"
         "  dead list|requeue|purge   dead letters\n"
         "  retry --id ID | --failed [--error-type T]   run failed jobs again\n"
         "  gc --older-than D   retention: forget old ids, trim old results\n"
         "  prices show|set|unset|load|reset   the fleet's price table\n"
         "  functions load|list|prune   this version's Redis function library (admin)\n"
         "  batches list|show ID|cancel ID   the Batch lane's batches\n\n"
         "common options: --redis-url URL (LLMFLEET_REDIS_URL), "
         "--fleet NAME (LLMFLEET_FLEET)\n"
         "'llmfleet COMMAND --help' lists a command's options; "
         "llmfleet --version prints the release.");
}

static int runWorker(int argc, char **argv) {
    workerConfig cfg;
    const char *level = envOr("LLMFLEET_LOG_LEVEL", "info");
    const char *format = envOr("LLMFLEET_LOG_FORMAT", "text");
    char *pos[1];
    int npos;

    workerConfigDefaults(&cfg);
    cfg.redis_url = envOr("LLMFLEET_REDIS_URL", "redis://127.0.0.1:6379/0");
    cfg.fleet = envOr("LLMFLEET_FLEET", "default");
    cfg.base_url = envOr("ANTHROPIC_BASE_URL", "https://api.anthropic.com");
    cfg.api_key = getenv("ANTHROPIC_API_KEY");
    cfg.metrics_addr = getenv("LLMFLEET_METRICS_ADDR");
    if (cfg.metrics_addr && !*cfg.metrics_addr) cfg.metrics_addr = NULL;
    const optSpec specs[] = {
        {"redis-url", OPT_STR, &cfg.redis_url, 0, "Redis URL (redis://[user:pass@]host:port/db, unix:///path)"},
        {"fleet", OPT_STR, &cfg.fleet, 0, "fleet name (key prefix)"},
        {"name", OPT_STR, &cfg.name, 0, "worker name (default host:pid:random)"},
        {"concurrency", OPT_INT, &cfg.concurrency, 1, "local request slots (64)"},
        {"anthropic-version", OPT_STR, &cfg.version, 0, "anthropic-version header (2023-06-01)"},
        {"prices", OPT_STR, &cfg.prices, 0, "gone: refused (prices are fleet state: llmfleet prices load FILE)"},
        {"lease-ms", OPT_LONG, &cfg.lease_ms, 300, "lease duration (30000)"},
        {"connect-timeout-ms", OPT_LONG, &cfg.connect_timeout_ms, 1, "connect timeout (10000)"},
        {"timeout-ms", OPT_LONG, &cfg.timeout_ms, 0, "total request timeout; 0 = 60 s + max_tokens x per-token"},
        {"timeout-per-token-ms", OPT_LONG, &cfg.timeout_per_token_ms, 0, "per max_tokens for the automatic timeout (60)"},
        {"idle-poll-ms", OPT_LONG, &cfg.idle_poll_ms, 100, "claim interval while the queue is empty (100)"},
        {"drain-timeout-ms", OPT_LONG, &cfg.drain_timeout_ms, 0, "SIGTERM: wait this long for in-flight requests (30000)"},
        {"results-maxlen", OPT_LONG, &cfg.results_maxlen, 1, "results stream MAXLEN ~ (1000000)"},
        {"max-job-bytes", OPT_SIZE, &cfg.max_job_bytes, 1, "largest job accepted (33554432)"},
        {"max-response-bytes", OPT_SIZE, &cfg.max_response_bytes, 1, "largest response accepted (16777216)"},
        {"allow-insecure-http", OPT_FLAG, &cfg.allow_insecure_http, 0, "allow http:// to non-loopback hosts"},
        {"allow-core-dump", OPT_FLAG, &cfg.allow_core_dump, 0, "let a crash write a core file (it may hold the API key)"},
        {"metrics-addr", OPT_STR, &cfg.metrics_addr, 0, "serve Prometheus /metrics and /healthz on HOST:PORT (LLMFLEET_METRICS_ADDR; off)"},
        {"summary-ms", OPT_LONG, &cfg.summary_ms, 0, "log a summary line this often while busy; 0 = never (60000)"},
        {"wait-replicas", OPT_INT, &cfg.wait_replicas, 0, "act on an admission and free a settled slot only once N replicas have the write (WAIT; 0 = off)"},
        {"wait-replicas-ms", OPT_LONG, &cfg.wait_replicas_ms, 10, "timeout of one WAIT, asked again while short (1000)"},
        {"no-follow", OPT_FLAG, &cfg.no_follow, 0, "admit no job ahead to follow a request in flight (a Redis round trip between a slot's requests)"},
        {"log-level", OPT_STR, &level, 0, "debug|info|warn|error (info)"},
        {"log-format", OPT_STR, &format, 0, "text (key=value) or json (a JSON object a line) (text)"},
        {NULL, 0, NULL, 0, NULL},
    };
    int r = optParse("worker", argc, argv, specs, pos, 0, &npos);
    if (r == 1) {
        optUsage("worker", "[options]   (env: ANTHROPIC_API_KEY, ANTHROPIC_BASE_URL)", specs);
        return 0;
    }
    if (r < 0) return 2;
    if ((lfLogLevel = lfLogParseLevel(level)) < 0) {
        fprintf(stderr, "llmfleet worker: --log-level must be debug, info, warn "
                "or error, got \"%s\"\n", level);
        return 2;
    }
    if ((lfLogJson = lfLogParseFormat(format)) < 0) {
        fprintf(stderr, "llmfleet worker: --log-format must be text or json, got %s\n",
                lfQ(format));
        lfLogJson = 0;
        return 2;
    }
    return workerRun(&cfg);
}

int main(int argc, char **argv) {
    if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
        usage();
        return argc < 2 ? 2 : 0;
    }
    const char *cmd = argv[1];
    if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
        printf("llmfleet %s\n", LLMFLEET_VERSION);
        return 0;
    }
    cliCommon cc = {
        envOr("LLMFLEET_REDIS_URL", "redis://127.0.0.1:6379/0"),
        envOr("LLMFLEET_FLEET", "default"),
    };
    if (strcmp(cmd, "worker") == 0) return runWorker(argc - 2, argv + 2);
    if (strcmp(cmd, "submit") == 0) return cliSubmit(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "results") == 0) return cliResults(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "status") == 0) return cliStatus(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "limits") == 0) return cliLimits(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "pause") == 0) return cliPause(&cc, argc - 2, argv + 2, 0);
    if (strcmp(cmd, "resume") == 0) return cliPause(&cc, argc - 2, argv + 2, 1);
    if (strcmp(cmd, "dead") == 0) return cliDead(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "wait") == 0) return cliWait(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "retry") == 0) return cliRetry(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "gc") == 0) return cliGc(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "prices") == 0) return cliPrices(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "functions") == 0) return cliFunctions(&cc, argc - 2, argv + 2);
    if (strcmp(cmd, "batches") == 0) return cliBatches(&cc, argc - 2, argv + 2);
    fprintf(stderr, "llmfleet: unknown command \"%s\" (see llmfleet --help)\n", cmd);
    return 2;
}
