#include "proxy/server.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdlib.h>
#include <string.h>

#include <event2/bufferevent.h>
#include <event2/bufferevent_ssl.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <openssl/err.h>
#include <openssl/ssl.h>

#include "config/limits.h"
#include "config/log.h"

/* Seconds an idle or slow client connection is kept. */
#define SERVER_CONNECTION_TIMEOUT_SECONDS 120

/* Request bodies are never used (every write gets 405); a small cap keeps
 * a client from making libevent buffer a large one first. */
#define SERVER_BODY_MAX_BYTES (64u * 1024)

/* Seconds the listener pauses after accept() fails for lack of file
 * descriptors or memory, so that the loop does not spin on a listening
 * socket that stays readable. */
#define SERVER_ACCEPT_PAUSE_SECONDS 1

struct server {
    struct evhttp *http;
    struct evhttp_bound_socket *bound;
    struct event *resume_accept;
    unsigned accept_errors; /* since the last log line */
    SSL_CTX *tls;
};

static void
on_resume_accept(evutil_socket_t fd, short what, void *arg)
{
    struct server *server = arg;

    if (server->bound != NULL)
        evconnlistener_enable(evhttp_bound_socket_get_listener(server->bound));
}

/*
 * accept() failed with an error other than a retriable one, usually
 * EMFILE or ENFILE. The listener stays readable, so it is disabled for a
 * moment instead of being retried at once, and the failure is logged once
 * per pause with the count since the previous line.
 */
/*
 * The server whose listener failed. libevent passes the error callback the
 * listener's own argument, which belongs to evhttp, so the server is found
 * here; a process runs one server.
 */
static struct server *accepting_server;

static void
on_accept_error(struct evconnlistener *listener, void *arg)
{
    struct server *server = accepting_server;
    struct timeval pause = {.tv_sec = SERVER_ACCEPT_PAUSE_SECONDS};
    int code = EVUTIL_SOCKET_ERROR();

    if (server == NULL)
        return;
    server->accept_errors++;
    evconnlistener_disable(listener);
    if (evtimer_pending(server->resume_accept, NULL))
        return;
    pg_log(PG_LOG_ERROR, "accept_failed",
           "error=\"%s\" count=%u pause_s=%d", evutil_socket_error_to_string(code),
           server->accept_errors, SERVER_ACCEPT_PAUSE_SECONDS);
    server->accept_errors = 0;
    evtimer_add(server->resume_accept, &pause);
}

static struct bufferevent *
tls_bufferevent(struct event_base *base, void *arg)
{
    SSL_CTX *ctx = arg;
    SSL *ssl = SSL_new(ctx);

    if (ssl == NULL)
        return NULL;
    return bufferevent_openssl_socket_new(base, -1, ssl,
                                          BUFFEREVENT_SSL_ACCEPTING,
                                          BEV_OPT_CLOSE_ON_FREE);
}

static SSL_CTX *
tls_context(const struct config *cfg, struct pg_error **err)
{
    SSL_CTX *ctx = SSL_CTX_new(TLS_server_method());
    char detail[256] = "";

    if (ctx == NULL)
        goto fail;
    SSL_CTX_set_min_proto_version(ctx, TLS1_2_VERSION);
    if (SSL_CTX_use_certificate_chain_file(ctx, cfg->tls_cert_file) != 1)
        goto fail;
    if (SSL_CTX_use_PrivateKey_file(ctx, cfg->tls_key_file,
                                    SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_check_private_key(ctx) != 1)
        goto fail;
    return ctx;

fail:
    ERR_error_string_n(ERR_get_error(), detail, sizeof(detail));
    pg_error_set(err, 500, PG_ERR_CONFIG,
                 "cannot load the TLS certificate %s and key %s: %s; check "
                 "tls.cert_file and tls.key_file",
                 cfg->tls_cert_file, cfg->tls_key_file, detail);
    SSL_CTX_free(ctx);
    return NULL;
}

struct server *
server_new(struct event_base *base, const struct config *cfg,
           struct handlers *handlers, struct pg_error **err)
{
    struct server *server = calloc(1, sizeof(*server));

    if (server == NULL || (server->http = evhttp_new(base)) == NULL) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "out of memory while starting the HTTP server");
        goto fail;
    }
    if (cfg->tls_cert_file != NULL && cfg->tls_key_file != NULL) {
        server->tls = tls_context(cfg, err);
        if (server->tls == NULL)
            goto fail;
        evhttp_set_bevcb(server->http, tls_bufferevent, server->tls);
    }

    /* Every method reaches the handlers, which reject writes with 405 and
     * an OCI error body instead of libevent's plain 405. */
    evhttp_set_allowed_methods(server->http,
                               EVHTTP_REQ_GET | EVHTTP_REQ_HEAD |
                                   EVHTTP_REQ_POST | EVHTTP_REQ_PUT |
                                   EVHTTP_REQ_DELETE | EVHTTP_REQ_OPTIONS |
                                   EVHTTP_REQ_PATCH);
    evhttp_set_max_headers_size(server->http, PG_HEADERS_MAX_BYTES);
    evhttp_set_max_body_size(server->http, SERVER_BODY_MAX_BYTES);
    evhttp_set_timeout(server->http, SERVER_CONNECTION_TIMEOUT_SECONDS);
    evhttp_set_gencb(server->http, handlers_dispatch, handlers);

    server->bound = evhttp_bind_socket_with_handle(
        server->http, cfg->listen_host, cfg->listen_port);
    if (server->bound == NULL) {
        pg_error_set(err, 500, PG_ERR_CONFIG,
                     "cannot listen on %s port %u: %s; choose another "
                     "address with --listen or listen:",
                     cfg->listen_host, cfg->listen_port, strerror(errno));
        goto fail;
    }
    /* Linux copies TCP_NODELAY from the listening socket to each accepted
     * one. Without it the last partial segment of a response waits for
     * the client's delayed acknowledgement, about 40 ms per blob. */
    if (setsockopt(evhttp_bound_socket_get_fd(server->bound), IPPROTO_TCP,
                   TCP_NODELAY, &(int){1}, sizeof(int)) < 0)
        pg_log(PG_LOG_WARN, "tcp_nodelay_failed", "error=\"%s\"",
               strerror(errno));
    server->resume_accept = evtimer_new(base, on_resume_accept, server);
    if (server->resume_accept == NULL) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "out of memory while starting the HTTP server");
        goto fail;
    }
    accepting_server = server;
    evconnlistener_set_error_cb(evhttp_bound_socket_get_listener(server->bound),
                                on_accept_error);
    return server;

fail:
    server_free(server);
    return NULL;
}

void
server_stop_accepting(struct server *server)
{
    if (server == NULL || server->bound == NULL)
        return;
    evhttp_del_accept_socket(server->http, server->bound);
    server->bound = NULL;
    if (server->resume_accept != NULL)
        event_del(server->resume_accept);
}

void
server_free(struct server *server)
{
    if (server == NULL)
        return;
    if (accepting_server == server)
        accepting_server = NULL;
    if (server->resume_accept != NULL)
        event_free(server->resume_accept);
    if (server->http != NULL)
        evhttp_free(server->http);
    SSL_CTX_free(server->tls);
    free(server);
}
