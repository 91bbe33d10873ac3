/*
 * The built-in default policy: config/policy/default.yaml compiled into the
 * program as a string by policy/embed.awk, so the daemon starts without a
 * policy file and the shipped file cannot drift from the built-in copy.
 */
#ifndef PG_DEFAULT_POLICY_H
#define PG_DEFAULT_POLICY_H

#include <stddef.h>

/* The YAML text, NUL-terminated; policy_default_yaml_len excludes the NUL. */
extern const char policy_default_yaml[];
extern const size_t policy_default_yaml_len;

#endif
