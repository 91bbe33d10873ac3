#include "proxy/upstream.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/queue.h>
#include <time.h>

#include <curl/curl.h>
#include <event2/event.h>

#include "config/limits.h"
#include "config/log.h"
#include "config/parse.h"
#include "proxy/upstream_auth.h"

#define UPSTREAM_USER_AGENT "pullgate/" PACKAGE_VERSION

/* Connections libcurl opens to one host at a time; further transfers to
 * that host wait in libcurl's queue. */
#define UPSTREAM_HOST_CONNECTIONS_MAX 16L

/* Bytes of one value in a log line, after quoting. */
#define UPSTREAM_LOG_VALUE_MAX 512

/* Sets a libcurl option unless an earlier one in the sequence failed. */
#define SETOPT(rc, easy, option, value)                                        \
    do {                                                                       \
        if ((rc) == CURLE_OK)                                                  \
            (rc) = curl_easy_setopt((easy), (option), (value));                \
    } while (0)

enum transfer_phase {
    PHASE_REQUEST, /* the caller's request, or its authenticated retry */
    PHASE_TOKEN,   /* a token request to the challenge's realm */
};

struct response_header {
    char *name;
    char *value;
};

/* One socket that libcurl asked the loop to watch. */
struct upstream_socket {
    struct event *event;
    LIST_ENTRY(upstream_socket) link;
};

struct upstream_transfer {
    struct upstream_client *client;
    LIST_ENTRY(upstream_transfer) link;
    /* Transfers waiting for the deferred event, which runs outside every
     * libcurl callback: new ones to add to the multi handle, cancelled
     * ones to free, and failures found inside a callback. */
    LIST_ENTRY(upstream_transfer) start_link;
    bool on_start_list;
    LIST_ENTRY(upstream_transfer) release_link;
    bool on_release_list;

    const struct config_upstream *upstream;
    char *path;
    char *accept;
    char *range;
    char *repository;
    bool head;
    bool follow_redirects;
    struct upstream_callbacks callbacks;
    void *arg;

    CURL *easy;
    bool attached; /* easy is in the multi handle */
    enum transfer_phase phase;
    struct curl_slist *request_headers;
    char error_text[CURL_ERROR_SIZE];

    /* The response of the current attempt. Headers belong to the latest
     * header block, since redirects and 1xx responses each send one. */
    int status;
    bool in_header_block;
    struct response_header *headers;
    size_t n_headers;
    size_t headers_cap;
    size_t header_bytes;
    bool decided; /* headers delivered, or the 401 chosen for a retry */
    bool headers_delivered;
    bool paused;
    uint64_t body_bytes;

    /* Authentication state across attempts. */
    struct upstream_challenge challenge;
    bool retry_auth; /* this 401 is discarded and the request retried */
    size_t discarded_bytes;
    char *scope;       /* scope of the token being requested */
    char *token;       /* bearer token sent, a secret */
    char *token_scope; /* cache key that token is stored under */
    bool token_fetched;
    bool basic_sent;
    struct evbuffer *token_body;
    uint64_t token_started_ms;

    bool cancelled;
    bool finished;
    struct pg_error *pending_err; /* given to on_done at the end */
    char *effective_url;
    uint64_t started_ms;

    /* upstream_fetch() only. */
    upstream_buffer_cb fetch_cb;
    void *fetch_arg;
    struct evbuffer *fetch_body;
    size_t fetch_max;
};

struct upstream_client {
    struct event_base *base;
    const struct config *cfg;
    CURLM *multi;
    struct event *timer;    /* libcurl's timeout */
    struct event *kick;     /* runs libcurl soon after a resume */
    struct event *deferred; /* starts and releases transfers */
    struct upstream_token_cache *tokens;
    LIST_HEAD(, upstream_transfer) transfers;
    LIST_HEAD(, upstream_transfer) starting;
    LIST_HEAD(, upstream_transfer) released;
    LIST_HEAD(, upstream_socket) sockets;
    bool curl_initialized;
};

static void client_drain(struct upstream_client *client);
static void transfer_finish(struct upstream_transfer *t, struct pg_error *err);
static size_t transfer_header_cb(char *line, size_t size, size_t count,
                                 void *arg);
static size_t transfer_write_cb(char *data, size_t size, size_t count,
                                void *arg);

static uint64_t
now_ms(void)
{
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

static void
set_oom(struct pg_error **err)
{
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory in the upstream client; retry later");
}

static void
arm_zero_timer(struct event *event)
{
    static const struct timeval zero = {0, 0};

    evtimer_add(event, &zero);
}

/* ---- The libcurl multi handle on the libevent loop ---- */

static void
client_run_timeouts(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_client *client = arg;
    int running;
    CURLMcode code;

    code = curl_multi_socket_action(client->multi, CURL_SOCKET_TIMEOUT, 0,
                                    &running);
    if (code != CURLM_OK)
        pg_log(PG_LOG_WARN, "upstream_multi_failed", "call=timeout error=%s",
               curl_multi_strerror(code));
    client_drain(client);
}

static void
client_socket_ready(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_client *client = arg;
    int action = 0;
    int running;
    CURLMcode code;

    if (what & EV_READ)
        action |= CURL_CSELECT_IN;
    if (what & EV_WRITE)
        action |= CURL_CSELECT_OUT;

    /* The event may be freed inside this call, when libcurl closes the
     * socket, so nothing below touches it. */
    code = curl_multi_socket_action(client->multi, fd, action, &running);
    if (code != CURLM_OK)
        pg_log(PG_LOG_WARN, "upstream_multi_failed", "call=socket error=%s",
               curl_multi_strerror(code));
    client_drain(client);
}

static void
socket_free(struct upstream_socket *sock)
{
    if (sock == NULL)
        return;
    LIST_REMOVE(sock, link);
    event_free(sock->event);
    free(sock);
}

static struct upstream_socket *
socket_new(struct upstream_client *client, curl_socket_t fd)
{
    struct upstream_socket *sock = calloc(1, sizeof(*sock));

    if (sock == NULL)
        return NULL;
    sock->event = event_new(client->base, fd, EV_READ | EV_PERSIST,
                            client_socket_ready, client);
    if (sock->event == NULL) {
        free(sock);
        return NULL;
    }
    LIST_INSERT_HEAD(&client->sockets, sock, link);
    return sock;
}

/* CURLMOPT_SOCKETFUNCTION: adds, changes or removes the event that watches
 * fd, as libcurl requests. */
static int
client_socket_cb(CURL *easy, curl_socket_t fd, int what, void *arg,
                 void *socket_arg)
{
    struct upstream_client *client = arg;
    struct upstream_socket *sock = socket_arg;
    short events = EV_PERSIST;

    if (what == CURL_POLL_REMOVE) {
        if (sock != NULL) {
            curl_multi_assign(client->multi, fd, NULL);
            socket_free(sock);
        }
        return 0;
    }

    if (sock == NULL) {
        sock = socket_new(client, fd);
        if (sock == NULL)
            return -1;
        curl_multi_assign(client->multi, fd, sock);
    }
    if (what & CURL_POLL_IN)
        events |= EV_READ;
    if (what & CURL_POLL_OUT)
        events |= EV_WRITE;

    event_del(sock->event);
    event_assign(sock->event, client->base, fd, events, client_socket_ready,
                 client);
    return event_add(sock->event, NULL) == 0 ? 0 : -1;
}

/* CURLMOPT_TIMERFUNCTION: arms the one timer libcurl needs. */
static int
client_timer_cb(CURLM *multi, long timeout_ms, void *arg)
{
    struct upstream_client *client = arg;
    struct timeval delay;

    if (timeout_ms < 0) {
        evtimer_del(client->timer);
        return 0;
    }
    delay.tv_sec = timeout_ms / 1000;
    delay.tv_usec = (timeout_ms % 1000) * 1000;
    return evtimer_add(client->timer, &delay) == 0 ? 0 : -1;
}

/* ---- Small helpers for transfers ---- */

static void
quote(char *buf, const char *value)
{
    pg_log_quote(buf, UPSTREAM_LOG_VALUE_MAX, value);
}

static void
log_request_end(const struct upstream_transfer *t, const char *result)
{
    char name[UPSTREAM_LOG_VALUE_MAX];
    char path[UPSTREAM_LOG_VALUE_MAX];

    quote(name, t->upstream->name);
    quote(path, t->path);
    pg_log(PG_LOG_DEBUG, "upstream_request_end",
           "upstream=%s method=%s path=%s status=%d bytes=%llu "
           "elapsed_ms=%llu result=%s",
           name, t->head ? "HEAD" : "GET", path,
           t->headers_delivered ? t->status : 0,
           (unsigned long long)t->body_bytes,
           (unsigned long long)(now_ms() - t->started_ms), result);
}

static void
slist_free_wiped(struct curl_slist *list)
{
    for (struct curl_slist *item = list; item != NULL; item = item->next)
        explicit_bzero(item->data, strlen(item->data));
    curl_slist_free_all(list);
}

static void
wipe_free(char *secret)
{
    if (secret == NULL)
        return;
    explicit_bzero(secret, strlen(secret));
    free(secret);
}

static void
headers_clear(struct upstream_transfer *t)
{
    for (size_t i = 0; i < t->n_headers; i++) {
        free(t->headers[i].name);
        free(t->headers[i].value);
    }
    t->n_headers = 0;
    t->header_bytes = 0;
}

/* Returns a copy of url without user, password, query and fragment:
 * object storage redirects carry signatures in the query. */
static char *
url_without_secrets(const char *url)
{
    CURLU *parts = curl_url();
    char *clean = NULL;
    char *copy = NULL;

    if (parts == NULL)
        return NULL;
    if (curl_url_set(parts, CURLUPART_URL, url, 0) != CURLUE_OK)
        goto out;
    curl_url_set(parts, CURLUPART_USER, NULL, 0);
    curl_url_set(parts, CURLUPART_PASSWORD, NULL, 0);
    curl_url_set(parts, CURLUPART_OPTIONS, NULL, 0);
    curl_url_set(parts, CURLUPART_QUERY, NULL, 0);
    curl_url_set(parts, CURLUPART_FRAGMENT, NULL, 0);
    if (curl_url_get(parts, CURLUPART_URL, &clean, 0) != CURLUE_OK)
        goto out;
    copy = strdup(clean);

out:
    curl_free(clean);
    curl_url_cleanup(parts);
    return copy;
}

static void
transfer_note_url(struct upstream_transfer *t)
{
    char *url = NULL;
    char *clean;

    if (curl_easy_getinfo(t->easy, CURLINFO_EFFECTIVE_URL, &url) != CURLE_OK ||
        url == NULL)
        return;
    clean = url_without_secrets(url);
    if (clean == NULL)
        return;
    free(t->effective_url);
    t->effective_url = clean;
}

static void
transfer_detach(struct upstream_transfer *t)
{
    if (!t->attached)
        return;
    curl_multi_remove_handle(t->client->multi, t->easy);
    t->attached = false;
}

static int
transfer_attach(struct upstream_transfer *t, struct pg_error **err)
{
    CURLMcode code = curl_multi_add_handle(t->client->multi, t->easy);

    if (code != CURLM_OK) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "libcurl failed to start a request to upstream %s: %s; "
                     "retry later",
                     t->upstream->name, curl_multi_strerror(code));
        return -1;
    }
    t->attached = true;
    return 0;
}

static void
transfer_free(struct upstream_transfer *t)
{
    if (t == NULL)
        return;
    LIST_REMOVE(t, link);
    if (t->on_start_list)
        LIST_REMOVE(t, start_link);
    if (t->on_release_list)
        LIST_REMOVE(t, release_link);
    transfer_detach(t);
    curl_easy_cleanup(t->easy);
    slist_free_wiped(t->request_headers);

    headers_clear(t);
    free(t->headers);
    upstream_challenge_clear(&t->challenge);
    free(t->scope);
    wipe_free(t->token);
    free(t->token_scope);
    if (t->token_body != NULL)
        evbuffer_free(t->token_body);
    if (t->fetch_body != NULL)
        evbuffer_free(t->fetch_body);

    pg_error_free(t->pending_err);
    free(t->effective_url);
    free(t->path);
    free(t->accept);
    free(t->range);
    free(t->repository);
    free(t);
}

/* Queues t for the deferred event, which finishes or frees it outside
 * every libcurl callback. */
static void
transfer_release_later(struct upstream_transfer *t)
{
    if (!t->on_release_list) {
        LIST_INSERT_HEAD(&t->client->released, t, release_link);
        t->on_release_list = true;
    }
    arm_zero_timer(t->client->deferred);
}

/* Queues a new transfer for the deferred event. libcurl 7.88 rejects
 * curl_multi_add_handle inside its callbacks (CURLM_RECURSIVE_API_CALL),
 * and callers may start requests from on_headers or on_data. */
static void
transfer_start_later(struct upstream_transfer *t)
{
    LIST_INSERT_HEAD(&t->client->starting, t, start_link);
    t->on_start_list = true;
    arm_zero_timer(t->client->deferred);
}

static void
client_release_transfers(struct upstream_client *client)
{
    struct upstream_transfer *t;

    while ((t = LIST_FIRST(&client->released)) != NULL) {
        struct pg_error *err = t->pending_err;

        LIST_REMOVE(t, release_link);
        t->on_release_list = false;
        if (t->cancelled) {
            transfer_free(t);
            continue;
        }
        t->pending_err = NULL;
        transfer_finish(t, err);
    }
}

static void
client_start_transfers(struct upstream_client *client)
{
    struct upstream_transfer *t;

    while ((t = LIST_FIRST(&client->starting)) != NULL) {
        struct pg_error *err = NULL;

        LIST_REMOVE(t, start_link);
        t->on_start_list = false;
        if (transfer_attach(t, &err) < 0)
            transfer_finish(t, err);
    }
}

/* Runs from the loop, outside every libcurl callback. Cancelled transfers
 * go first, so that one cancelled before it started is never added. */
static void
client_run_deferred(evutil_socket_t fd, short what, void *arg)
{
    struct upstream_client *client = arg;

    client_release_transfers(client);
    client_start_transfers(client);
}

/* ---- Errors ---- */

enum fault {
    FAULT_UNREACHABLE,
    FAULT_TIMEOUT,
    FAULT_CLOSED,
    FAULT_REDIRECTS,
    FAULT_TLS,
    FAULT_PROTOCOL,
    FAULT_INVALID_RESPONSE,
    FAULT_MEMORY,
    FAULT_OTHER,
};

static enum fault
classify_curl_error(CURLcode code)
{
    switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
        return FAULT_UNREACHABLE;
    case CURLE_OPERATION_TIMEDOUT:
        return FAULT_TIMEOUT;
    case CURLE_PARTIAL_FILE:
    case CURLE_RECV_ERROR:
    case CURLE_SEND_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM:
        return FAULT_CLOSED;
    case CURLE_TOO_MANY_REDIRECTS:
        return FAULT_REDIRECTS;
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_PEER_FAILED_VERIFICATION:
    case CURLE_SSL_CERTPROBLEM:
    case CURLE_SSL_CIPHER:
    case CURLE_SSL_CACERT_BADFILE:
    case CURLE_SSL_ISSUER_ERROR:
    case CURLE_SSL_CRL_BADFILE:
    case CURLE_SSL_PINNEDPUBKEYNOTMATCH:
    case CURLE_SSL_INVALIDCERTSTATUS:
    case CURLE_SSL_CLIENTCERT:
    case CURLE_SSL_ENGINE_INITFAILED:
    case CURLE_SSL_ENGINE_NOTFOUND:
    case CURLE_SSL_ENGINE_SETFAILED:
        return FAULT_TLS;
    case CURLE_UNSUPPORTED_PROTOCOL:
        return FAULT_PROTOCOL;
    case CURLE_WEIRD_SERVER_REPLY:
    case CURLE_BAD_CONTENT_ENCODING:
        return FAULT_INVALID_RESPONSE;
    case CURLE_OUT_OF_MEMORY:
        return FAULT_MEMORY;
    default:
        return FAULT_OTHER;
    }
}

/* Turns a libcurl failure of the current attempt into an error naming the
 * upstream, the URL (without secrets) and libcurl's detail text. */
static void
transfer_curl_error(struct upstream_transfer *t, CURLcode code,
                    struct pg_error **err)
{
    const char *name = t->upstream->name;
    const char *url;
    const char *detail = t->error_text;

    transfer_note_url(t);
    url = upstream_effective_url(t);
    if (detail[0] == '\0')
        detail = curl_easy_strerror(code);

    switch (classify_curl_error(code)) {
    case FAULT_UNREACHABLE:
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s (%s) is unreachable: %s", name, url, detail);
        break;
    case FAULT_TIMEOUT:
        pg_error_set(err, 504, PG_ERR_UNAVAILABLE,
                     "upstream %s (%s) timed out: %s", name, url, detail);
        break;
    case FAULT_CLOSED:
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s (%s) closed the connection in the middle "
                     "of the response: %s",
                     name, url, detail);
        break;
    case FAULT_REDIRECTS:
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s redirected %s more than %d times: %s", name,
                     t->path, PG_REDIRECTS_MAX, detail);
        break;
    case FAULT_TLS:
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "TLS verification of upstream %s (%s) failed: %s; check "
                     "its certificate, or set the upstream's tls.ca_file to "
                     "the CA bundle that signed it",
                     name, url, detail);
        break;
    case FAULT_PROTOCOL:
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s redirected %s to a URL that is not http or "
                     "https: %s",
                     name, t->path, detail);
        break;
    case FAULT_INVALID_RESPONSE:
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s (%s) sent an invalid HTTP response: %s", name,
                     url, detail);
        break;
    case FAULT_MEMORY:
        set_oom(err);
        break;
    case FAULT_OTHER:
        pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                     "request to upstream %s (%s) failed: %s", name, url,
                     detail);
        break;
    }
}

/* ---- Setting up an attempt ---- */

static CURLcode
setup_tls(CURL *easy, const struct config_tls *tls)
{
    CURLcode rc = CURLE_OK;

    SETOPT(rc, easy, CURLOPT_SSL_VERIFYPEER, tls->verify ? 1L : 0L);
    SETOPT(rc, easy, CURLOPT_SSL_VERIFYHOST, tls->verify ? 2L : 0L);
    if (tls->ca_file != NULL)
        SETOPT(rc, easy, CURLOPT_CAINFO, tls->ca_file);
    if (tls->cert_file != NULL)
        SETOPT(rc, easy, CURLOPT_SSLCERT, tls->cert_file);
    if (tls->key_file != NULL)
        SETOPT(rc, easy, CURLOPT_SSLKEY, tls->key_file);
    return rc;
}

/* Resets the handle and sets what every attempt shares. */
static CURLcode
setup_common(struct upstream_transfer *t, const char *url)
{
    const struct config *cfg = t->client->cfg;
    CURL *easy = t->easy;
    CURLcode rc = CURLE_OK;

    curl_easy_reset(easy);
    t->error_text[0] = '\0';
    SETOPT(rc, easy, CURLOPT_URL, url);
    SETOPT(rc, easy, CURLOPT_PRIVATE, (void *)t);
    SETOPT(rc, easy, CURLOPT_ERRORBUFFER, t->error_text);
    SETOPT(rc, easy, CURLOPT_NOSIGNAL, 1L);
    SETOPT(rc, easy, CURLOPT_USERAGENT, UPSTREAM_USER_AGENT);
    SETOPT(rc, easy, CURLOPT_CONNECTTIMEOUT,
           (long)cfg->connect_timeout_seconds);
    SETOPT(rc, easy, CURLOPT_LOW_SPEED_LIMIT, 1L);
    SETOPT(rc, easy, CURLOPT_LOW_SPEED_TIME,
           (long)cfg->low_speed_timeout_seconds);
    SETOPT(rc, easy, CURLOPT_PROTOCOLS_STR, "http,https");
    SETOPT(rc, easy, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
    SETOPT(rc, easy, CURLOPT_UNRESTRICTED_AUTH, 0L);
    SETOPT(rc, easy, CURLOPT_SUPPRESS_CONNECT_HEADERS, 1L);
    SETOPT(rc, easy, CURLOPT_TCP_KEEPALIVE, 1L);
    SETOPT(rc, easy, CURLOPT_HEADERFUNCTION, transfer_header_cb);
    SETOPT(rc, easy, CURLOPT_HEADERDATA, (void *)t);
    SETOPT(rc, easy, CURLOPT_WRITEFUNCTION, transfer_write_cb);
    SETOPT(rc, easy, CURLOPT_WRITEDATA, (void *)t);
    if (rc == CURLE_OK)
        rc = setup_tls(easy, &t->upstream->tls);
    return rc;
}

static CURLcode
setup_basic_auth(struct upstream_transfer *t)
{
    const struct config_upstream *upstream = t->upstream;
    CURLcode rc = CURLE_OK;

    SETOPT(rc, t->easy, CURLOPT_USERNAME, upstream->username);
    SETOPT(rc, t->easy, CURLOPT_PASSWORD,
           upstream->password ? upstream->password : "");
    SETOPT(rc, t->easy, CURLOPT_HTTPAUTH, (long)CURLAUTH_BASIC);
    return rc;
}

static int
add_header(struct curl_slist **list, const char *name, const char *value)
{
    size_t size = strlen(name) + strlen(value) + 3;
    char *line = malloc(size);
    struct curl_slist *grown;

    if (line == NULL)
        return -1;
    snprintf(line, size, "%s: %s", name, value);
    grown = curl_slist_append(*list, line);
    wipe_free(line);
    if (grown == NULL)
        return -1;
    *list = grown;
    return 0;
}

static int
build_request_headers(struct upstream_transfer *t, struct curl_slist **list)
{
    char *bearer = NULL;
    size_t size;
    int rc = -1;

    if (t->accept != NULL && add_header(list, "Accept", t->accept) < 0)
        goto out;
    if (t->range != NULL && add_header(list, "Range", t->range) < 0)
        goto out;
    if (t->token != NULL) {
        size = strlen("Bearer ") + strlen(t->token) + 1;
        bearer = malloc(size);
        if (bearer == NULL)
            goto out;
        snprintf(bearer, size, "Bearer %s", t->token);
        if (add_header(list, "Authorization", bearer) < 0)
            goto out;
    }
    rc = 0;

out:
    wipe_free(bearer);
    return rc;
}

static void
transfer_reset_response(struct upstream_transfer *t)
{
    headers_clear(t);
    t->status = 0;
    t->in_header_block = false;
    t->decided = false;
    t->headers_delivered = false;
    t->paused = false;
    t->retry_auth = false;
    t->discarded_bytes = 0;
    t->body_bytes = 0;
}

/* Replaces the request headers; the old list is freed after the handle
 * was reset, since libcurl keeps a pointer to it. */
static void
transfer_set_headers(struct upstream_transfer *t, struct curl_slist *list)
{
    slist_free_wiped(t->request_headers);
    t->request_headers = list;
}

static int
transfer_setup_request(struct upstream_transfer *t, struct pg_error **err)
{
    const char *base = t->upstream->url;
    size_t size = strlen(base) + strlen(t->path) + 1;
    char *url = malloc(size);
    struct curl_slist *list = NULL;
    CURLcode rc = CURLE_OUT_OF_MEMORY;

    transfer_reset_response(t);
    if (url == NULL)
        goto out;
    snprintf(url, size, "%s%s", base, t->path);

    rc = setup_common(t, url);
    transfer_set_headers(t, NULL);
    if (rc == CURLE_OK && build_request_headers(t, &list) < 0)
        rc = CURLE_OUT_OF_MEMORY;
    transfer_set_headers(t, list);
    SETOPT(rc, t->easy, CURLOPT_HTTPHEADER, t->request_headers);
    if (t->head)
        SETOPT(rc, t->easy, CURLOPT_NOBODY, 1L);
    SETOPT(rc, t->easy, CURLOPT_FOLLOWLOCATION, t->follow_redirects ? 1L : 0L);
    SETOPT(rc, t->easy, CURLOPT_MAXREDIRS, (long)PG_REDIRECTS_MAX);
    if (t->basic_sent && rc == CURLE_OK)
        rc = setup_basic_auth(t);

out:
    free(url);
    if (rc != CURLE_OK)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "failed to set up a request to upstream %s: %s; retry "
                     "later",
                     t->upstream->name, curl_easy_strerror(rc));
    return rc == CURLE_OK ? 0 : -1;
}

static int
transfer_setup_token(struct upstream_transfer *t, const char *url,
                     struct pg_error **err)
{
    struct curl_slist *list = NULL;
    CURLcode rc;

    transfer_reset_response(t);
    rc = setup_common(t, url);
    transfer_set_headers(t, NULL);
    if (rc == CURLE_OK && add_header(&list, "Accept", "application/json") < 0)
        rc = CURLE_OUT_OF_MEMORY;
    transfer_set_headers(t, list);
    SETOPT(rc, t->easy, CURLOPT_HTTPHEADER, t->request_headers);
    SETOPT(rc, t->easy, CURLOPT_FOLLOWLOCATION, 0L);
    if (t->upstream->username != NULL && rc == CURLE_OK)
        rc = setup_basic_auth(t);

    if (rc != CURLE_OK)
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "failed to set up a token request for upstream %s: %s; "
                     "retry later",
                     t->upstream->name, curl_easy_strerror(rc));
    return rc == CURLE_OK ? 0 : -1;
}

/* ---- Receiving a response ---- */

/* Parses "HTTP/1.1 200 OK" or "HTTP/2 200". Returns 0 when malformed. */
static int
parse_status_line(const char *line, size_t len)
{
    const char *space = memchr(line, ' ', len);
    uint64_t status;

    if (space == NULL || (size_t)(line + len - space) < 4)
        return 0;
    if (pg_parse_u64_n(space + 1, 3, 999, &status) < 0)
        return 0;
    return (int)status;
}

static bool
is_header_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Stores "Name: value" from one header line. Lines without a colon, such
 * as obsolete line folding, are skipped. Returns -1 when memory is short. */
static int
headers_add(struct upstream_transfer *t, const char *line, size_t len)
{
    const char *colon = memchr(line, ':', len);
    const char *name_end = colon;
    const char *value = colon + 1;
    const char *value_end = line + len;
    struct response_header *header;

    if (colon == NULL || colon == line)
        return 0;
    while (name_end > line && is_header_space(name_end[-1]))
        name_end--;
    while (value < value_end && is_header_space(*value))
        value++;
    while (value_end > value && is_header_space(value_end[-1]))
        value_end--;

    if (t->n_headers == t->headers_cap) {
        size_t cap = t->headers_cap ? t->headers_cap * 2 : 16;
        struct response_header *grown =
            realloc(t->headers, cap * sizeof(*grown));

        if (grown == NULL)
            return -1;
        t->headers = grown;
        t->headers_cap = cap;
    }
    header = &t->headers[t->n_headers];
    header->name = strndup(line, (size_t)(name_end - line));
    header->value = strndup(value, (size_t)(value_end - value));
    if (header->name == NULL || header->value == NULL) {
        free(header->name);
        free(header->value);
        return -1;
    }
    t->n_headers++;
    return 0;
}

/* CURLOPT_HEADERFUNCTION: keeps the headers of the latest header block.
 * A status line starts a new block, so only the final response's headers
 * remain after redirects and 1xx responses. */
static size_t
transfer_header_cb(char *line, size_t size, size_t count, void *arg)
{
    struct upstream_transfer *t = arg;
    size_t len = size * count;

    if (t->cancelled || t->pending_err != NULL)
        return 0;
    if (t->headers_delivered || len == 0)
        return len;
    if (len >= 5 && memcmp(line, "HTTP/", 5) == 0) {
        headers_clear(t);
        t->status = parse_status_line(line, len);
        t->in_header_block = true;
        return len;
    }
    /* Trailers, which follow a chunked body, are not kept. */
    if (!t->in_header_block)
        return len;
    if (line[0] == '\r' || line[0] == '\n') {
        t->in_header_block = false;
        return len;
    }

    t->header_bytes += len;
    if (t->header_bytes > PG_HEADERS_MAX_BYTES) {
        pg_error_set(&t->pending_err, 502, PG_ERR_UNAVAILABLE,
                     "upstream %s sent more than %u bytes of response "
                     "headers for %s",
                     t->upstream->name, (unsigned)PG_HEADERS_MAX_BYTES,
                     t->path);
        return 0;
    }
    if (headers_add(t, line, len) < 0) {
        set_oom(&t->pending_err);
        return 0;
    }
    return len;
}

/* Parses the WWW-Authenticate headers of a 401 into t->challenge, keeping
 * the most preferred scheme. Returns -1 with t->pending_err set when no
 * challenge can be used and one of them was malformed. */
static int
transfer_read_challenge(struct upstream_transfer *t)
{
    struct pg_error *parse_err = NULL;

    upstream_challenge_clear(&t->challenge);
    for (size_t i = 0; i < t->n_headers; i++) {
        struct upstream_challenge found;

        if (strcasecmp(t->headers[i].name, "WWW-Authenticate") != 0)
            continue;
        if (upstream_challenge_parse(t->headers[i].value, &found, &parse_err) <
            0)
            continue;
        if (found.scheme > t->challenge.scheme) {
            upstream_challenge_clear(&t->challenge);
            t->challenge = found;
        } else {
            upstream_challenge_clear(&found);
        }
    }

    if (t->challenge.scheme == UPSTREAM_AUTH_NONE && parse_err != NULL) {
        pg_error_prefix(&parse_err, "upstream %s answered %s with 401",
                        t->upstream->name, t->path);
        if (t->pending_err == NULL)
            t->pending_err = parse_err;
        else
            pg_error_free(parse_err);
        return -1;
    }
    pg_error_free(parse_err);
    return 0;
}

/* Returns whether a 401 gets a retry with credentials. The 401 is the
 * final response instead after a freshly fetched token or Basic
 * credentials were rejected, when no challenge has a supported scheme,
 * and for Basic when the upstream has no username. */
static bool
transfer_plan_auth(struct upstream_transfer *t)
{
    if (t->token_fetched || t->basic_sent)
        return false;
    if (transfer_read_challenge(t) < 0)
        return false;
    switch (t->challenge.scheme) {
    case UPSTREAM_AUTH_BEARER:
        return true;
    case UPSTREAM_AUTH_BASIC:
        return t->upstream->username != NULL;
    default:
        return false;
    }
}

/* Runs once per attempt, at the first body byte or at the end when there
 * is no body: either chooses an authenticated retry or hands the final
 * response's status and headers to the caller. */
static void
transfer_decide(struct upstream_transfer *t)
{
    int rc;

    t->decided = true;
    if (t->status == 401 && transfer_plan_auth(t)) {
        t->retry_auth = true;
        return;
    }
    if (t->pending_err != NULL)
        return;

    t->headers_delivered = true;
    transfer_note_url(t);
    if (t->callbacks.on_headers == NULL)
        return;
    rc = t->callbacks.on_headers(t, t->status, t->arg);
    if (!t->cancelled && rc < 0)
        pg_error_set(&t->pending_err, 502, PG_ERR_UNAVAILABLE,
                     "transfer of %s from upstream %s was cancelled after "
                     "its headers (status %d)",
                     t->path, t->upstream->name, t->status);
}

static size_t
write_token_body(struct upstream_transfer *t, const char *data, size_t len)
{
    const char *realm = t->challenge.realm;

    if (evbuffer_get_length(t->token_body) + len >
        PG_TOKEN_RESPONSE_MAX_BYTES) {
        pg_error_set(&t->pending_err, 502, PG_ERR_UNAVAILABLE,
                     "token endpoint %.*s for upstream %s sent more than %u "
                     "bytes",
                     (int)strcspn(realm, "?#"), realm, t->upstream->name,
                     (unsigned)PG_TOKEN_RESPONSE_MAX_BYTES);
        return 0;
    }
    if (evbuffer_add(t->token_body, data, len) < 0) {
        set_oom(&t->pending_err);
        return 0;
    }
    return len;
}

/* Swallows the body of a 401 that will be retried. A body over the limit
 * ends the attempt early, which the retry does not need. */
static size_t
write_discard(struct upstream_transfer *t, size_t len)
{
    t->discarded_bytes += len;
    if (t->discarded_bytes > PG_UPSTREAM_ERROR_BODY_MAX)
        return 0;
    return len;
}

static size_t
write_body(struct upstream_transfer *t, char *data, size_t len)
{
    int rc = 0;

    if (t->callbacks.on_data != NULL)
        rc = t->callbacks.on_data(t, data, len, t->arg);
    if (t->cancelled)
        return 0;
    if (rc == UPSTREAM_PAUSE) {
        t->paused = true;
        return CURL_WRITEFUNC_PAUSE;
    }
    if (rc < 0) {
        pg_error_set(&t->pending_err, 502, PG_ERR_UNAVAILABLE,
                     "transfer of %s from upstream %s was cancelled while "
                     "receiving the body",
                     t->path, t->upstream->name);
        return 0;
    }
    t->body_bytes += len;
    return len;
}

/* CURLOPT_WRITEFUNCTION. Returning 0 makes libcurl end the transfer with
 * CURLE_WRITE_ERROR, which is how a cancel or a pending error stops it
 * from inside a callback. */
static size_t
transfer_write_cb(char *data, size_t size, size_t count, void *arg)
{
    struct upstream_transfer *t = arg;
    size_t len = size * count;

    if (t->cancelled || t->pending_err != NULL)
        return 0;
    if (t->phase == PHASE_TOKEN)
        return write_token_body(t, data, len);
    if (!t->decided) {
        transfer_decide(t);
        if (t->cancelled || t->pending_err != NULL)
            return 0;
    }
    if (t->retry_auth)
        return write_discard(t, len);
    return write_body(t, data, len);
}

/* ---- Ending an attempt ---- */

/* Calls on_done and frees t. Runs outside every libcurl callback. */
static void
transfer_finish(struct upstream_transfer *t, struct pg_error *err)
{
    int status = t->headers_delivered ? t->status : 0;

    t->finished = true;
    transfer_detach(t);
    if (t->phase == PHASE_REQUEST)
        transfer_note_url(t);
    log_request_end(t, err == NULL ? "ok" : "failed");
    if (t->callbacks.on_done != NULL)
        t->callbacks.on_done(t, status, err, t->arg);
    else
        pg_error_free(err);
    transfer_free(t);
}

static void
transfer_finish_pending(struct upstream_transfer *t)
{
    struct pg_error *err = t->pending_err;

    t->pending_err = NULL;
    transfer_finish(t, err);
}

static void
log_retry(const struct upstream_transfer *t, const char *scheme)
{
    char name[UPSTREAM_LOG_VALUE_MAX];
    char path[UPSTREAM_LOG_VALUE_MAX];

    quote(name, t->upstream->name);
    quote(path, t->path);
    pg_log(PG_LOG_DEBUG, "upstream_request_retry",
           "upstream=%s method=%s path=%s auth=%s", name,
           t->head ? "HEAD" : "GET", path, scheme);
}

/* Starts the request again, with whatever credentials t now carries. */
static void
transfer_restart(struct upstream_transfer *t)
{
    struct pg_error *err = NULL;

    t->phase = PHASE_REQUEST;
    if (transfer_setup_request(t, &err) < 0 || transfer_attach(t, &err) < 0)
        transfer_finish(t, err);
}

static int
transfer_use_token(struct upstream_transfer *t, const char *token,
                   const char *scope, struct pg_error **err)
{
    char *token_copy = strdup(token);
    char *scope_copy = strdup(scope);

    if (token_copy == NULL || scope_copy == NULL) {
        wipe_free(token_copy);
        free(scope_copy);
        set_oom(err);
        return -1;
    }
    wipe_free(t->token);
    free(t->token_scope);
    t->token = token_copy;
    t->token_scope = scope_copy;
    return 0;
}

static void
transfer_fetch_token(struct upstream_transfer *t)
{
    struct pg_error *err = NULL;
    char *url = upstream_auth_token_url(&t->challenge, t->scope, &err);

    if (url == NULL)
        goto out;
    if (t->token_body == NULL)
        t->token_body = evbuffer_new();
    if (t->token_body == NULL) {
        set_oom(&err);
        goto out;
    }
    evbuffer_drain(t->token_body, evbuffer_get_length(t->token_body));

    t->phase = PHASE_TOKEN;
    t->token_started_ms = now_ms();
    if (transfer_setup_token(t, url, &err) < 0)
        goto out;
    transfer_attach(t, &err);

out:
    free(url);
    if (err != NULL) {
        pg_error_prefix(&err, "upstream %s", t->upstream->name);
        transfer_finish(t, err);
    }
}

/* Retries after a 401 with Basic credentials, a cached bearer token for
 * the challenge's scope, or a new token from the realm. */
static void
transfer_authenticate(struct upstream_transfer *t)
{
    struct upstream_client *client = t->client;
    const char *name = t->upstream->name;
    struct pg_error *err = NULL;
    const char *cached;
    char *scope;

    if (t->challenge.scheme == UPSTREAM_AUTH_BASIC) {
        t->basic_sent = true;
        log_retry(t, "basic");
        transfer_restart(t);
        return;
    }

    scope = upstream_auth_scope(t->challenge.scope, t->repository, &err);
    if (scope == NULL) {
        transfer_finish(t, err);
        return;
    }
    free(t->scope);
    t->scope = scope;

    /* A token that was sent and rejected is dropped, and a new one is
     * fetched. Otherwise a token cached for this scope is tried first. */
    if (t->token != NULL) {
        upstream_token_cache_drop(client->tokens, name, t->token_scope,
                                  t->token);
    } else {
        cached = upstream_token_cache_get(client->tokens, name, scope,
                                          now_ms() / 1000);
        if (cached != NULL) {
            if (transfer_use_token(t, cached, scope, &err) < 0) {
                transfer_finish(t, err);
                return;
            }
            log_retry(t, "bearer");
            transfer_restart(t);
            return;
        }
    }
    transfer_fetch_token(t);
}

static void
request_done(struct upstream_transfer *t, CURLcode code)
{
    /* An error while a 401 body was being discarded does not matter,
     * because the retry opens a new request. */
    if (t->pending_err == NULL && code != CURLE_OK && !t->retry_auth)
        transfer_curl_error(t, code, &t->pending_err);
    if (t->pending_err == NULL && !t->decided) {
        transfer_decide(t);
        if (t->cancelled)
            return;
    }
    if (t->pending_err != NULL) {
        transfer_finish_pending(t);
        return;
    }
    if (t->retry_auth) {
        transfer_authenticate(t);
        return;
    }
    transfer_finish(t, NULL);
}

static void
log_token_fetch(const struct upstream_transfer *t)
{
    char name[UPSTREAM_LOG_VALUE_MAX];
    char scope[UPSTREAM_LOG_VALUE_MAX];

    quote(name, t->upstream->name);
    quote(scope, t->scope);
    pg_log(PG_LOG_INFO, "upstream_token_fetch",
           "upstream=%s scope=%s status=%d elapsed_ms=%llu", name, scope,
           t->status, (unsigned long long)(now_ms() - t->token_started_ms));
}

/* Parses the token response, caches the token and makes it the one the
 * retry sends. The response body is wiped, since it contains the token. */
static int
transfer_store_token(struct upstream_transfer *t, struct pg_error **err)
{
    struct upstream_token token = {0};
    size_t len = evbuffer_get_length(t->token_body);
    unsigned char *body = evbuffer_pullup(t->token_body, -1);
    uint64_t lifetime;
    int rc = -1;

    if (upstream_token_parse(body ? (const char *)body : "", len, &token, err) <
        0)
        goto out;

    /* A token that cannot be cached only costs another token request. */
    lifetime = upstream_token_lifetime(&token, (int64_t)time(NULL));
    upstream_token_cache_put(t->client->tokens, t->upstream->name, t->scope,
                             token.value, lifetime, now_ms() / 1000, NULL);
    if (transfer_use_token(t, token.value, t->scope, err) < 0)
        goto out;
    t->token_fetched = true;
    rc = 0;

out:
    upstream_token_clear(&token);
    if (body != NULL)
        explicit_bzero(body, len);
    evbuffer_drain(t->token_body, len);
    return rc;
}

static void
set_token_status_error(struct upstream_transfer *t, struct pg_error **err)
{
    const char *realm = t->challenge.realm;
    int realm_len = (int)strcspn(realm, "?#");
    const char *hint = "; retry later";

    if (t->status == 401 || t->status == 403)
        hint = t->upstream->username != NULL
                   ? "; check the upstream's username and password"
                   : "; the upstream may need a username and password";
    pg_error_set(err, 502, PG_ERR_UNAVAILABLE,
                 "token endpoint %.*s for upstream %s returned %d%s", realm_len,
                 realm, t->upstream->name, t->status, hint);
}

static void
token_done(struct upstream_transfer *t, CURLcode code)
{
    const char *realm = t->challenge.realm;
    int realm_len = (int)strcspn(realm, "?#");
    const char *detail =
        t->error_text[0] ? t->error_text : curl_easy_strerror(code);
    struct pg_error *err = NULL;

    log_token_fetch(t);
    if (t->pending_err != NULL) {
        transfer_finish_pending(t);
        return;
    }
    if (code != CURLE_OK) {
        pg_error_set(&err,
                     classify_curl_error(code) == FAULT_TIMEOUT ? 504 : 502,
                     PG_ERR_UNAVAILABLE,
                     "token endpoint %.*s for upstream %s failed: %s",
                     realm_len, realm, t->upstream->name, detail);
        transfer_finish(t, err);
        return;
    }
    if (t->status < 200 || t->status > 299) {
        set_token_status_error(t, &err);
        transfer_finish(t, err);
        return;
    }
    if (transfer_store_token(t, &err) < 0) {
        pg_error_prefix(&err, "token endpoint %.*s for upstream %s", realm_len,
                        realm, t->upstream->name);
        transfer_finish(t, err);
        return;
    }
    log_retry(t, "bearer");
    transfer_restart(t);
}

static void
transfer_done(struct upstream_transfer *t, CURLcode code)
{
    transfer_detach(t);
    if (t->phase == PHASE_TOKEN)
        token_done(t, code);
    else
        request_done(t, code);
}

/* Hands every finished transfer to its handler. Runs after each
 * curl_multi_socket_action call, never inside a libcurl callback. */
static void
client_drain(struct upstream_client *client)
{
    CURLMsg *msg;
    int left;

    while ((msg = curl_multi_info_read(client->multi, &left)) != NULL) {
        char *private_data = NULL;
        struct upstream_transfer *t;
        CURLcode code;

        if (msg->msg != CURLMSG_DONE)
            continue;
        code = msg->data.result;
        curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, &private_data);
        t = (struct upstream_transfer *)(void *)private_data;

        /* A cancelled transfer is left to the deferred event. */
        if (t == NULL || t->cancelled)
            continue;
        transfer_done(t, code);
    }
}

/* ---- Public functions ---- */

/* Hooks the multi handle to the loop. The multi handle keeps idle
 * connections for reuse by later transfers to the same host. */
static CURLMcode
client_setup_multi(struct upstream_client *client)
{
    CURLM *multi = client->multi;
    CURLMcode rc;

    rc = curl_multi_setopt(multi, CURLMOPT_SOCKETFUNCTION, client_socket_cb);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(multi, CURLMOPT_SOCKETDATA, client);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(multi, CURLMOPT_TIMERFUNCTION, client_timer_cb);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(multi, CURLMOPT_TIMERDATA, client);
    if (rc == CURLM_OK)
        rc = curl_multi_setopt(multi, CURLMOPT_MAX_HOST_CONNECTIONS,
                               UPSTREAM_HOST_CONNECTIONS_MAX);
    return rc;
}

struct upstream_client *
upstream_client_new(struct event_base *base, const struct config *cfg,
                    struct pg_error **err)
{
    struct upstream_client *client = calloc(1, sizeof(*client));
    CURLMcode rc = CURLM_OK;

    if (client == NULL) {
        set_oom(err);
        return NULL;
    }
    client->base = base;
    client->cfg = cfg;
    LIST_INIT(&client->transfers);
    LIST_INIT(&client->starting);
    LIST_INIT(&client->released);
    LIST_INIT(&client->sockets);

    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        goto fail;
    client->curl_initialized = true;
    client->multi = curl_multi_init();
    client->timer = evtimer_new(base, client_run_timeouts, client);
    client->kick = evtimer_new(base, client_run_timeouts, client);
    client->deferred = evtimer_new(base, client_run_deferred, client);
    client->tokens =
        upstream_token_cache_new(UPSTREAM_TOKEN_CACHE_MAX_ENTRIES, NULL);
    if (client->multi == NULL || client->timer == NULL ||
        client->kick == NULL || client->deferred == NULL ||
        client->tokens == NULL)
        goto fail;

    rc = client_setup_multi(client);
    if (rc != CURLM_OK)
        goto fail;
    return client;

fail:
    if (rc != CURLM_OK)
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "failed to create the upstream client: libcurl rejected "
                     "a multi handle option (%s)",
                     curl_multi_strerror(rc));
    else
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "failed to create the upstream client: libcurl or "
                     "libevent failed to initialize, or memory is short");
    upstream_client_free(client);
    return NULL;
}

void
upstream_client_free(struct upstream_client *client)
{
    struct upstream_transfer *t;
    struct upstream_socket *sock;

    if (client == NULL)
        return;
    while ((t = LIST_FIRST(&client->transfers)) != NULL)
        transfer_free(t);

    /* Socket events are freed after the multi handle, so that a socket
     * callback made while libcurl closes its connections finds them. */
    if (client->multi != NULL)
        curl_multi_cleanup(client->multi);
    while ((sock = LIST_FIRST(&client->sockets)) != NULL)
        socket_free(sock);

    if (client->deferred != NULL)
        event_free(client->deferred);
    if (client->kick != NULL)
        event_free(client->kick);
    if (client->timer != NULL)
        event_free(client->timer);
    upstream_token_cache_free(client->tokens);
    if (client->curl_initialized)
        curl_global_cleanup();
    free(client);
}

/* Returns whether text has a byte that must not reach a request line or
 * header: a control character, or a space when spaces are not allowed. */
static bool
has_unsafe_byte(const char *text, bool allow_space)
{
    for (const unsigned char *p = (const unsigned char *)text; *p; p++) {
        if (*p < 0x20 || *p == 0x7f || (*p == ' ' && !allow_space))
            return true;
    }
    return false;
}

static int
request_validate(const struct upstream_request *req, struct pg_error **err)
{
    const char *problem = NULL;

    if (req->upstream == NULL || req->upstream->name == NULL ||
        req->upstream->url == NULL)
        problem = "has no upstream";
    else if (req->method == NULL || (strcmp(req->method, "GET") != 0 &&
                                     strcmp(req->method, "HEAD") != 0))
        problem = "has a method other than GET or HEAD";
    else if (req->path == NULL || req->path[0] != '/' ||
             has_unsafe_byte(req->path, false))
        problem = "has a path that is not absolute or contains spaces or "
                  "control characters";
    else if ((req->accept != NULL && has_unsafe_byte(req->accept, true)) ||
             (req->range != NULL && has_unsafe_byte(req->range, true)))
        problem = "has a header value with control characters";

    if (problem == NULL)
        return 0;
    pg_error_set(err, 500, PG_ERR_INTERNAL, "upstream request %s", problem);
    return -1;
}

static char *
copy_optional(const char *text, bool *failed)
{
    char *copy;

    if (text == NULL)
        return NULL;
    copy = strdup(text);
    if (copy == NULL)
        *failed = true;
    return copy;
}

static struct upstream_transfer *
transfer_new(struct upstream_client *client, const struct upstream_request *req,
             const struct upstream_callbacks *cb, void *arg,
             struct pg_error **err)
{
    struct upstream_transfer *t = calloc(1, sizeof(*t));
    bool failed = false;

    if (t == NULL) {
        set_oom(err);
        return NULL;
    }
    LIST_INSERT_HEAD(&client->transfers, t, link);
    t->client = client;
    t->upstream = req->upstream;
    t->head = strcmp(req->method, "HEAD") == 0;
    t->follow_redirects = req->follow_redirects;
    t->callbacks = *cb;
    t->arg = arg;
    t->started_ms = now_ms();

    t->path = copy_optional(req->path, &failed);
    t->accept = copy_optional(req->accept, &failed);
    t->range = copy_optional(req->range, &failed);
    t->repository = copy_optional(req->repository, &failed);
    t->easy = curl_easy_init();
    if (failed || t->easy == NULL) {
        set_oom(err);
        transfer_free(t);
        return NULL;
    }
    return t;
}

static void
log_request_start(const struct upstream_transfer *t)
{
    char name[UPSTREAM_LOG_VALUE_MAX];
    char path[UPSTREAM_LOG_VALUE_MAX];

    quote(name, t->upstream->name);
    quote(path, t->path);
    pg_log(PG_LOG_DEBUG, "upstream_request_start",
           "upstream=%s method=%s path=%s token=%s", name,
           t->head ? "HEAD" : "GET", path, t->token ? "cached" : "none");
}

struct upstream_transfer *
upstream_start(struct upstream_client *client,
               const struct upstream_request *req,
               const struct upstream_callbacks *cb, void *arg,
               struct pg_error **err)
{
    struct upstream_transfer *t;
    const char *cached;

    if (request_validate(req, err) < 0)
        return NULL;
    t = transfer_new(client, req, cb, arg, err);
    if (t == NULL)
        return NULL;

    /* A token cached for this repository is sent with the first request,
     * which saves the 401 round trip. */
    t->scope = upstream_auth_scope(NULL, t->repository, err);
    if (t->scope == NULL)
        goto fail;
    cached = upstream_token_cache_get(client->tokens, t->upstream->name,
                                      t->scope, now_ms() / 1000);
    if (cached != NULL && transfer_use_token(t, cached, t->scope, err) < 0)
        goto fail;

    if (transfer_setup_request(t, err) < 0)
        goto fail;
    transfer_start_later(t);
    log_request_start(t);
    return t;

fail:
    transfer_free(t);
    return NULL;
}

void
upstream_resume(struct upstream_transfer *transfer)
{
    struct upstream_transfer *t = transfer;
    CURLcode code;

    if (t == NULL || !t->paused || t->cancelled || t->finished)
        return;
    t->paused = false;

    /* libcurl may deliver the kept bytes to on_data from inside this
     * call, and on_data may pause or cancel again. */
    code = curl_easy_pause(t->easy, CURLPAUSE_CONT);
    if (t->cancelled)
        return;
    if (code != CURLE_OK || t->pending_err != NULL) {
        if (t->pending_err == NULL)
            transfer_curl_error(t, code, &t->pending_err);
        transfer_release_later(t);
        return;
    }

    /* libcurl notices the resumed transfer only when it runs again. */
    arm_zero_timer(t->client->kick);
}

void
upstream_cancel(struct upstream_transfer *transfer)
{
    if (transfer == NULL || transfer->cancelled || transfer->finished)
        return;
    transfer->cancelled = true;
    log_request_end(transfer, "cancelled");
    transfer_release_later(transfer);
}

const char *
upstream_header(const struct upstream_transfer *transfer, const char *name)
{
    for (size_t i = 0; i < transfer->n_headers; i++) {
        if (strcasecmp(transfer->headers[i].name, name) == 0)
            return transfer->headers[i].value;
    }
    return NULL;
}

const char *
upstream_effective_url(const struct upstream_transfer *transfer)
{
    if (transfer->effective_url != NULL)
        return transfer->effective_url;
    return transfer->upstream->url;
}

/* ---- Whole bodies in memory ---- */

static void
fetch_set_too_big(struct upstream_transfer *t)
{
    pg_error_set(&t->pending_err, 502, PG_ERR_UNAVAILABLE,
                 "upstream %s sent more than %zu bytes for %s",
                 t->upstream->name, t->fetch_max, t->path);
}

/* Rejects an announced body over the maximum before any of it arrives.
 * A HEAD response's Content-Length describes a body that is not sent. */
static int
fetch_on_headers(struct upstream_transfer *t, int status, void *arg)
{
    const char *length = upstream_header(t, "Content-Length");
    uint64_t bytes;

    if (t->head || length == NULL)
        return 0;
    if (pg_parse_u64(length, UINT64_MAX, &bytes) == 0 && bytes > t->fetch_max) {
        fetch_set_too_big(t);
        return -1;
    }
    return 0;
}

static int
fetch_on_data(struct upstream_transfer *t, const char *data, size_t len,
              void *arg)
{
    if (evbuffer_get_length(t->fetch_body) + len > t->fetch_max) {
        fetch_set_too_big(t);
        return -1;
    }
    if (evbuffer_add(t->fetch_body, data, len) < 0) {
        set_oom(&t->pending_err);
        return -1;
    }
    return 0;
}

static void
fetch_on_done(struct upstream_transfer *t, int status, struct pg_error *err,
              void *arg)
{
    t->fetch_cb(t, status, t->fetch_body, err, t->fetch_arg);
}

struct upstream_transfer *
upstream_fetch(struct upstream_client *client,
               const struct upstream_request *req, size_t max_bytes,
               upstream_buffer_cb cb, void *arg, struct pg_error **err)
{
    static const struct upstream_callbacks callbacks = {
        .on_headers = fetch_on_headers,
        .on_data = fetch_on_data,
        .on_done = fetch_on_done,
    };
    struct upstream_transfer *t;

    t = upstream_start(client, req, &callbacks, NULL, err);
    if (t == NULL)
        return NULL;

    /* t is not in the multi handle yet, so it can still be freed here. */
    t->fetch_body = evbuffer_new();
    if (t->fetch_body == NULL) {
        set_oom(err);
        transfer_free(t);
        return NULL;
    }
    t->fetch_cb = cb;
    t->fetch_arg = arg;
    t->fetch_max = max_bytes;
    return t;
}
