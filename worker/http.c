/* http.c — libcurl multi_socket + libevent glue (http.h).
 *
 * The shape is curl's multi-event example: libcurl tells us which sockets
 * to watch (onSocket) and when to wake it (onTimer); every event goes back
 * through curl_multi_socket_action() and then checkDone() collects
 * finished transfers. Nothing is touched after curl_multi_remove_handle()
 * but our own struct. */
#include "http.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <event2/event.h>

#include "log.h"
#include "mono.h"

/* Per-socket state: the libevent event watching it. */
typedef struct httpSock {
    struct event *ev;
    httpClient *hc;
} httpSock;

static void checkDone(httpClient *hc) {
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(hc->multi, &left))) {
        if (m->msg != CURLMSG_DONE) continue;
        httpReq *req = NULL;
        CURL *easy = m->easy_handle;
        CURLcode rc = m->data.result;
        curl_easy_getinfo(easy, CURLINFO_PRIVATE, (char **)&req);
        curl_easy_getinfo(easy, CURLINFO_RESPONSE_CODE, &req->status);
        curl_multi_remove_handle(hc->multi, easy);
        evtimer_del(req->watchdog);
        req->active = 0;
        req->result = rc;
        req->done(req, req->priv);
    }
}

static void onEvent(evutil_socket_t fd, short what, void *arg) {
    httpClient *hc = arg;
    int flags = (what & EV_READ ? CURL_CSELECT_IN : 0) |
                (what & EV_WRITE ? CURL_CSELECT_OUT : 0);
    curl_multi_socket_action(hc->multi, fd, flags, &hc->running);
    /* (Before the done callbacks: one may start a request, whose timer
     * curl sets then, a follower at its leader's answer.) */
    if (hc->running <= 0 && evtimer_pending(hc->timer, NULL))
        evtimer_del(hc->timer);
    checkDone(hc);
}

static void onTimeout(evutil_socket_t fd, short what, void *arg) {
    httpClient *hc = arg;
    (void)fd; (void)what;
    curl_multi_socket_action(hc->multi, CURL_SOCKET_TIMEOUT, 0, &hc->running);
    checkDone(hc);
}

/* CURLMOPT_TIMERFUNCTION: one non-repeating timer. */
static int onTimer(CURLM *multi, long ms, void *arg) {
    httpClient *hc = arg;
    (void)multi;
    if (ms < 0) {
        evtimer_del(hc->timer);
        return 0;
    }
    struct timeval tv = {ms / 1000, (ms % 1000) * 1000};
    evtimer_add(hc->timer, &tv);
    return 0;
}

/* CURLMOPT_SOCKETFUNCTION: watch, re-watch or forget a socket. */
static int onSocket(CURL *easy, curl_socket_t s, int what, void *arg,
                    void *sockp) {
    httpClient *hc = arg;
    httpSock *hs = sockp;
    (void)easy;
    if (what == CURL_POLL_REMOVE) {
        if (hs) {
            event_free(hs->ev);
            free(hs);
            curl_multi_assign(hc->multi, s, NULL);
        }
        return 0;
    }
    short kind = EV_PERSIST | (what & CURL_POLL_IN ? EV_READ : 0) |
                 (what & CURL_POLL_OUT ? EV_WRITE : 0);
    if (!hs) {
        hs = calloc(1, sizeof(*hs));
        if (!hs) abort();
        hs->hc = hc;
        curl_multi_assign(hc->multi, s, hs);
    } else {
        event_free(hs->ev);
    }
    hs->ev = event_new(hc->base, s, kind, onEvent, hc);
    event_add(hs->ev, NULL);
    return 0;
}

/* ---- Per request ------------------------------------------------------ */

static size_t onBody(char *p, size_t size, size_t n, void *arg) {
    httpReq *req = arg;
    size_t len = size * n;
    if (req->sink) return req->sink(req, p, len, req->priv);
    if (req->body.len + len > req->client->max_response) {
        req->too_large = 1;
        return 0;               /* makes libcurl fail with CURLE_WRITE_ERROR */
    }
    bufAppend(&req->body, p, len);
    return len;
}

static size_t onHeader(char *p, size_t size, size_t n, void *arg) {
    httpReq *req = arg;
    size_t len = size * n;
    char err[160];
    if (len > 5 && strncasecmp(p, "HTTP/", 5) == 0) {
        rlInit(&req->rl);       /* a new response (after 100-continue...) */
        req->window_t0 = monoMs();
        req->window_b0 = 0;
        return len;
    }
    if (rlParseLine(&req->rl, p, len, err, sizeof(err)) < 0)
        lfLog(LF_WARN, "event=bad_ratelimit_header error=%s", lfQ(err));
    return len;
}

/* The watchdog: a response slower than HTTP_SLOW_MIN_BYTES per window is
 * cut and completes as a timeout with its own message. */
static void onWatchdog(evutil_socket_t fd, short what, void *arg) {
    httpReq *req = arg;
    (void)fd; (void)what;
    if (!req->active || !req->window_t0) return;
    long long now = monoMs();
    if (now - req->window_t0 < HTTP_SLOW_WINDOW_MS) return;
    curl_off_t got = 0;
    curl_easy_getinfo(req->easy, CURLINFO_SIZE_DOWNLOAD_T, &got);
    if (got - req->window_b0 >= HTTP_SLOW_MIN_BYTES) {
        req->window_t0 = now;
        req->window_b0 = got;
        return;
    }
    evtimer_del(req->watchdog);
    curl_multi_remove_handle(req->client->multi, req->easy);
    req->active = 0;
    req->too_slow = 1;
    req->result = CURLE_OPERATION_TIMEDOUT;
    curl_easy_getinfo(req->easy, CURLINFO_RESPONSE_CODE, &req->status);
    snprintf(req->errbuf, sizeof(req->errbuf), "the response trickled: %lld bytes in "
             "%lld ms after the status line (at least %d per %d ms expected)",
             (long long)(got - req->window_b0), now - req->window_t0,
             HTTP_SLOW_MIN_BYTES, HTTP_SLOW_WINDOW_MS);
    req->done(req, req->priv);
}

void httpReqInit(httpClient *hc, httpReq *req, httpDoneProc *done, void *priv) {
    memset(req, 0, sizeof(*req));
    req->client = hc;
    req->done = done;
    req->priv = priv;
    req->easy = curl_easy_init();
    req->watchdog = event_new(hc->base, -1, EV_PERSIST, onWatchdog, req);
    if (!req->easy || !req->watchdog) abort();
    CURL *e = req->easy;
    curl_easy_setopt(e, CURLOPT_URL, hc->url);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, hc->headers);
    curl_easy_setopt(e, CURLOPT_PRIVATE, req);
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, onBody);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, req);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, onHeader);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, req);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, req->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT_MS, hc->connect_timeout_ms);
    curl_easy_setopt(e, CURLOPT_HTTP_VERSION, (long)CURL_HTTP_VERSION_2TLS);
    /* Over TLS, wait for a connection that may multiplex (HTTP/2) rather
     * than opening a new one per request; cleartext is HTTP/1.1 only. */
    curl_easy_setopt(e, CURLOPT_PIPEWAIT, strncasecmp(hc->url, "https:", 6) == 0 ? 1L : 0L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_FOLLOWLOCATION, 0L);
    curl_easy_setopt(e, CURLOPT_TCP_NODELAY, 1L);
    curl_easy_setopt(e, CURLOPT_TCP_KEEPALIVE, 1L);
    curl_easy_setopt(e, CURLOPT_POST, 1L);
}

void httpReqFree(httpReq *req) {
    httpCancel(req);
    if (req->easy) curl_easy_cleanup(req->easy);
    req->easy = NULL;
    if (req->watchdog) event_free(req->watchdog);
    req->watchdog = NULL;
    bufFree(&req->body);
}

static int startTo(httpReq *req, const char *url, const char *body, size_t len,
                   long timeout_ms);

int httpStart(httpReq *req, const char *body, size_t len, long timeout_ms) {
    req->sink = NULL;
    return startTo(req, req->client->url, body, len, timeout_ms);
}

int httpStartApi(httpReq *req, const char *method, const char *path, const char *body,
                 size_t len, long timeout_ms, httpSinkProc *sink) {
    char url[sizeof(req->client->url) + 200];
    if (snprintf(url, sizeof(url), "%s%s", req->client->url, path) >= (int)sizeof(url))
        return -1;
    req->sink = sink;
    /* A stream has no overall timeout: it must only keep coming (a byte a
     * second over two minutes; a pause while its chunk settles is short). */
    curl_easy_setopt(req->easy, CURLOPT_LOW_SPEED_LIMIT, sink ? 1L : 0L);
    curl_easy_setopt(req->easy, CURLOPT_LOW_SPEED_TIME, sink ? 120L : 0L);
    if (strcmp(method, "GET") == 0) {
        curl_easy_setopt(req->easy, CURLOPT_HTTPGET, 1L);
        curl_easy_setopt(req->easy, CURLOPT_URL, url);
        return startTo(req, NULL, NULL, 0, timeout_ms);
    }
    curl_easy_setopt(req->easy, CURLOPT_POST, 1L);
    return startTo(req, url, body ? body : "", body ? len : 0, timeout_ms);
}

void httpResume(httpReq *req) {
    if (req->active) curl_easy_pause(req->easy, CURLPAUSE_CONT);
}

int httpStartCount(httpReq *req, const char *body, size_t len, long timeout_ms) {
    req->sink = NULL;
    return startTo(req, req->client->count_url, body, len, timeout_ms);
}

static int startTo(httpReq *req, const char *url, const char *body, size_t len,
                   long timeout_ms) {
    if (url) curl_easy_setopt(req->easy, CURLOPT_URL, url);   /* (NULL: a GET, set) */
    bufReset(&req->body);
    rlInit(&req->rl);
    req->status = 0;
    req->result = CURLE_OK;
    req->too_large = 0;
    req->too_slow = 0;
    req->window_t0 = 0;
    req->window_b0 = 0;
    req->errbuf[0] = '\0';
    if (url) {
        curl_easy_setopt(req->easy, CURLOPT_POSTFIELDS, body);
        curl_easy_setopt(req->easy, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)len);
    }
    curl_easy_setopt(req->easy, CURLOPT_TIMEOUT_MS, timeout_ms);
    if (curl_multi_add_handle(req->client->multi, req->easy) != CURLM_OK)
        return -1;
    req->active = 1;
    if (req->sink) return 0;        /* (a stream the sink may pause: no watchdog) */
    struct timeval tv = {HTTP_SLOW_CHECK_MS / 1000, (HTTP_SLOW_CHECK_MS % 1000) * 1000};
    evtimer_add(req->watchdog, &tv);
    return 0;
}

void httpCancel(httpReq *req) {
    if (!req->active) return;
    curl_multi_remove_handle(req->client->multi, req->easy);
    evtimer_del(req->watchdog);
    req->active = 0;
}

/* ---- Client ----------------------------------------------------------- */

static int isLoopbackHost(const char *h, size_t n) {
    if (n == 9 && strncasecmp(h, "localhost", 9) == 0) return 1;
    if (n == 5 && strncmp(h, "[::1]", 5) == 0) return 1;
    if (n >= 4 && strncmp(h, "127.", 4) == 0) {
        for (size_t i = 4; i < n; i++)
            if (!(h[i] == '.' || (h[i] >= '0' && h[i] <= '9'))) return 0;
        return 1;
    }
    return 0;
}

int httpIsInsecureRemote(const char *base_url) {
    if (strncasecmp(base_url, "http://", 7) != 0) return 0;
    const char *h = base_url + 7;
    const char *at = strpbrk(h, "@/");
    if (at && *at == '@') h = at + 1;
    size_t n;
    if (*h == '[') {
        const char *close = strchr(h, ']');
        n = close ? (size_t)(close - h + 1) : strlen(h);
    } else {
        n = strcspn(h, ":/?#");
    }
    return !isLoopbackHost(h, n);
}

int httpInit(httpClient *hc, struct event_base *base, const char *base_url,
             const char *api_key, const char *version, long connect_timeout_ms,
             size_t max_response, int max_connections, char *err, size_t errlen) {
    char line[1024];
    memset(hc, 0, sizeof(*hc));
    size_t blen = strlen(base_url);
    while (blen > 0 && base_url[blen - 1] == '/') blen--;
    if (strncasecmp(base_url, "http://", 7) != 0 &&
        strncasecmp(base_url, "https://", 8) != 0) {
        snprintf(err, errlen, "ANTHROPIC_BASE_URL must start with https:// "
                 "(or http:// for loopback)");
        return -1;
    }
    if (blen + 13 >= sizeof(hc->url)) {
        snprintf(err, errlen, "ANTHROPIC_BASE_URL is too long");
        return -1;
    }
    snprintf(hc->url, sizeof(hc->url), "%.*s/v1/messages", (int)blen, base_url);
    snprintf(hc->count_url, sizeof(hc->count_url), "%.*s/v1/messages/count_tokens",
             (int)blen, base_url);
    if (strlen(api_key) > 512 || strpbrk(api_key, "\r\n")) {
        snprintf(err, errlen, "ANTHROPIC_API_KEY is malformed (too long or "
                 "has a line break)");
        return -1;
    }
    snprintf(line, sizeof(line), "x-api-key: %s", api_key);
    hc->headers = curl_slist_append(hc->headers, line);
    memset(line, 0, sizeof(line));
    snprintf(line, sizeof(line), "anthropic-version: %s", version);
    hc->headers = curl_slist_append(hc->headers, line);
    hc->headers = curl_slist_append(hc->headers, "content-type: application/json");
    hc->headers = curl_slist_append(hc->headers, "accept: application/json");
    hc->headers = curl_slist_append(hc->headers, "Expect:");
    hc->base = base;
    hc->connect_timeout_ms = connect_timeout_ms;
    hc->max_response = max_response;
    hc->multi = curl_multi_init();
    hc->timer = evtimer_new(base, onTimeout, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETFUNCTION, onSocket);
    curl_multi_setopt(hc->multi, CURLMOPT_SOCKETDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERFUNCTION, onTimer);
    curl_multi_setopt(hc->multi, CURLMOPT_TIMERDATA, hc);
    curl_multi_setopt(hc->multi, CURLMOPT_PIPELINING, CURLPIPE_MULTIPLEX);
    curl_multi_setopt(hc->multi, CURLMOPT_MAXCONNECTS, (long)max_connections);
    return 0;
}

void httpShutdown(httpClient *hc) {
    if (hc->multi) curl_multi_cleanup(hc->multi);
    if (hc->timer) event_free(hc->timer);
    curl_slist_free_all(hc->headers);
    memset(hc, 0, sizeof(*hc));
}
