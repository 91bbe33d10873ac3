/*
 * The HTTP server: an evhttp listener (plain or TLS through
 * bufferevent_openssl) that hands every request to the handlers.
 */
#ifndef PG_SERVER_H
#define PG_SERVER_H

#include <event2/event.h>

#include "config/config.h"
#include "config/error.h"
#include "proxy/handlers.h"

struct server;

/*
 * Binds cfg's listen address and starts accepting. With tls_cert_file and
 * tls_key_file set, serves HTTPS. Errors name the address or file.
 */
struct server *server_new(struct event_base *base, const struct config *cfg,
                          struct handlers *handlers, struct pg_error **err);

/* Closes the listening socket; connections already open go on. */
void server_stop_accepting(struct server *server);

/* Closes the listener and every connection; accepts NULL. */
void server_free(struct server *server);

#endif
