/* http.h — libcurl's multi_socket interface driven by libevent.
 *
 * One httpClient per worker holds the multi handle; each request slot owns
 * one httpReq (and its easy handle, reused from request to request, so
 * connections and TLS sessions are reused). libcurl never retries here:
 * every failure is reported and the fleet decides. */
#ifndef LF_HTTP_H
#define LF_HTTP_H

#include <stddef.h>

#include <curl/curl.h>

#include "buf.h"
#include "ratelimit.h"

struct event_base;
struct event;
typedef struct httpReq httpReq;

/* Called once per started request, when it completed or failed. */
typedef void httpDoneProc(httpReq *req, void *priv);

/* A streamed response body, piece by piece (httpStartApi): returns len
 * (taken), or CURL_WRITEFUNC_PAUSE (not taken: the transfer waits until
 * httpResume, then the same bytes come again). */
typedef size_t httpSinkProc(httpReq *req, const char *p, size_t len, void *priv);

typedef struct httpClient {
    CURLM *multi;
    struct event_base *base;
    struct event *timer;            /* libcurl's single timeout */
    struct curl_slist *headers;     /* shared request headers (hold the key) */
    char url[600];                  /* base URL + /v1/messages */
    char count_url[620];            /* base URL + /v1/messages/count_tokens */
    long connect_timeout_ms;
    size_t max_response;            /* response body cap, bytes */
    int running;                    /* transfers in progress */
} httpClient;

struct httpReq {
    CURL *easy;                     /* reused for every request of a slot */
    httpClient *client;
    buf body;                       /* response body */
    rlHeaders rl;                   /* rate-limit headers of the response */
    long status;                    /* HTTP status, 0 when none */
    CURLcode result;                /* transfer outcome */
    int too_large;                  /* body passed max_response */
    int active;                     /* added to the multi handle */
    char errbuf[CURL_ERROR_SIZE];   /* libcurl's message on failure */
    int too_slow;                   /* the answer trickled: cut by the watchdog */
    long long window_t0;            /* ms (monotonic): start of the rate window, 0 = no answer yet */
    curl_off_t window_b0;           /* bytes received at its start */
    struct event *watchdog;         /* checks the rate every HTTP_SLOW_CHECK_MS */
    httpDoneProc *done;
    void *priv;
    httpSinkProc *sink;             /* httpStartApi's stream, NULL: into body */
};

/* Once the status line has arrived (the API has finished the work; real
 * answers come whole at once), the response must bring HTTP_SLOW_MIN_BYTES
 * in every HTTP_SLOW_WINDOW_MS, or it is cut (error_type slow_response):
 * a trickling upstream does not hold a slot and its reservation for the
 * whole request timeout. */
#define HTTP_SLOW_WINDOW_MS 10000
#define HTTP_SLOW_MIN_BYTES 1024
#define HTTP_SLOW_CHECK_MS  1000

/* Set up the client. api_key goes only into a request header, never into
 * a log line. Returns 0, or -1 with err. */
int httpInit(httpClient *hc, struct event_base *base, const char *base_url,
             const char *api_key, const char *version, long connect_timeout_ms,
             size_t max_response, int max_connections, char *err, size_t errlen);
void httpShutdown(httpClient *hc);

/* Prepare a request slot (creates its easy handle). */
void httpReqInit(httpClient *hc, httpReq *req, httpDoneProc *done, void *priv);
void httpReqFree(httpReq *req);

/* POST body[0..len) to /v1/messages/count_tokens instead (the same
 * handling: done runs once). */
int httpStartCount(httpReq *req, const char *body, size_t len, long timeout_ms);

/* POST body[0..len) to /v1/messages. body must stay valid until done runs.
 * timeout_ms bounds the whole transfer. Returns 0, or -1 when libcurl
 * refused to start (done is not called). */
int httpStart(httpReq *req, const char *body, size_t len, long timeout_ms);

/* A request to another endpoint of the API: method "GET" or "POST", path
 * after the base URL's /v1/messages (e.g. "/batches/ID"), body for a POST
 * (valid until done runs). sink NULL: the body is collected (capped) as
 * for httpStart; else it goes to sink as it comes, uncapped, and the
 * trickle watchdog is off (the sink may pause it). Returns 0 or -1. */
int httpStartApi(httpReq *req, const char *method, const char *path, const char *body,
                 size_t len, long timeout_ms, httpSinkProc *sink);

/* Let a paused stream go on (the sink is called again at once or later). */
void httpResume(httpReq *req);

/* Abort a running request; done is not called. */
void httpCancel(httpReq *req);

/* 1 when base_url is http:// to a host that is not loopback. */
int httpIsInsecureRemote(const char *base_url);

#endif
