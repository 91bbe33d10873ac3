/*
 * Shared by the handler files; not part of the handlers' interface.
 */
#ifndef PG_HANDLERS_INTERNAL_H
#define PG_HANDLERS_INTERNAL_H

#include "proxy/handlers.h"
#include "proxy/respond.h"

struct handlers {
    struct handlers_deps deps;
    unsigned in_flight;
};

void handle_manifest(struct exchange *ex);
void handle_blob(struct exchange *ex);
void handle_tags_list(struct exchange *ex);
void handle_referrers(struct exchange *ex);

/* Ends the exchange with a new error (printf-style message). */
void respond_new_error(struct exchange *ex, int status, const char *code,
                       const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));

/* Ends the exchange with err and frees err. */
void respond_error_free(struct exchange *ex, struct pg_error *err);

/* Sets Docker-Distribution-API-Version, as every API response carries. */
void respond_api_version(struct exchange *ex);

#endif
