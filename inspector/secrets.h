/*
 * Secret rules: the built-in set and rules from the configuration,
 * compiled once with PCRE2 and its JIT and shared read-only by every
 * layer reader.
 */
#ifndef PG_INSPECTOR_SECRETS_H
#define PG_INSPECTOR_SECRETS_H

#include <stddef.h>

#include "config/config.h"
#include "config/error.h"

struct inspector_secrets;

/*
 * Compiles the built-in rules and the n extra rules from the
 * configuration. Returns NULL with a 400-class error naming the rule and
 * the pattern's column when a pattern does not compile, or a rule name is
 * used twice. The caller frees the result with inspector_secrets_free.
 */
struct inspector_secrets *
inspector_secrets_new(const struct config_secret_rule *extra, size_t n,
                      struct pg_error **err);

/* Accepts NULL. */
void inspector_secrets_free(struct inspector_secrets *secrets);

#endif
