/*
 * The evaluator of the CEL subset: walks a tree from cel_parse() over the
 * members of one JSON object and returns the value as JSON.
 *
 * Values that come from the input stay in the input: a list or map read
 * from it points at the jansson array or object, and a string at its
 * bytes. Values built during evaluation live in an arena that is freed
 * when the evaluation ends, and whose total size is bounded by
 * CEL_EVAL_MEMORY_MAX. Recursion follows the tree, whose height the parser
 * bounds by CEL_DEPTH_MAX.
 */
#include <ctype.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define PCRE2_CODE_UNIT_WIDTH 8
#include <jansson.h>
#include <pcre2.h>

#include "config/error.h"
#include "config/parse.h"
#include "policy/cel.h"
#include "policy/cel_internal.h"
#include "policy/glob.h"
#include "policy/version.h"

enum cel_type {
    CEL_TYPE_NULL,
    CEL_TYPE_BOOL,
    CEL_TYPE_INT,
    CEL_TYPE_UINT,
    CEL_TYPE_DOUBLE,
    CEL_TYPE_STRING,
    CEL_TYPE_LIST,
    CEL_TYPE_MAP,
};

static const char *const type_names[] = {
    [CEL_TYPE_NULL] = "null_type", [CEL_TYPE_BOOL] = "bool",
    [CEL_TYPE_INT] = "int",        [CEL_TYPE_UINT] = "uint",
    [CEL_TYPE_DOUBLE] = "double",  [CEL_TYPE_STRING] = "string",
    [CEL_TYPE_LIST] = "list",      [CEL_TYPE_MAP] = "map",
};

struct cel_value;

/* A list built during evaluation. */
struct cel_list {
    size_t count;
    struct cel_value *items;
};

/* A map built from a map literal: keys[i] maps to values[i]. */
struct cel_map {
    size_t count;
    struct cel_value *keys;
    struct cel_value *values;
};

/*
 * One CEL value. A string's bytes are followed by a NUL byte that len does
 * not count. A list or map is either a jansson array or object of the
 * input (json set) or an arena struct (list or map set).
 */
struct cel_value {
    enum cel_type type;
    union {
        bool boolean;
        int64_t int64;
        uint64_t uint64;
        double float64;
        struct {
            const char *data;
            size_t len;
        } string;
        const json_t *json;
        const struct cel_list *list;
        const struct cel_map *map;
    } u;
    bool from_json;
};

/* A compiled matches() pattern, kept for the rest of one evaluation. */
struct regex_entry {
    const struct cel_ast *site;
    char *pattern;
    size_t pattern_len;
    pcre2_code *code;
    pcre2_match_data *match_data;
};

/* Call sites of matches() whose compiled pattern one evaluation keeps. */
#define CEL_REGEX_CACHE_MAX 16

/* Nested calls of one DFA match (each assertion or recursion), which
 * bounds its stack. */
#define CEL_REGEX_MATCH_LIMIT 1000000u

/* Ints of workspace for one DFA match. That is room for the states of
 * patterns far larger than policies write, and a pattern that needs more
 * fails with an error naming it. */
#define CEL_REGEX_DFA_WORKSPACE 4096

/* One allocation of the arena, linked to the previous one. */
struct arena_block {
    struct arena_block *next;
    max_align_t data[];
};

/* A macro's iteration variable, which shadows outer names. */
struct binding {
    const char *name;
    struct cel_value value;
};

struct eval {
    const json_t *input;
    struct binding bindings[CEL_DEPTH_MAX];
    size_t binding_count;
    uint64_t steps;
    size_t memory;
    struct arena_block *blocks;
    struct regex_entry regexes[CEL_REGEX_CACHE_MAX];
    size_t regex_count;
    size_t regex_next; /* the entry to replace once the cache is full */
    pcre2_match_context *match_context;
    /* Match data for the patterns the parser compiled, which are shared
     * between threads and so cannot carry their own. */
    pcre2_match_data *literal_match_data;
    /* Set by the step, value size and memory limits and by failed
     * allocations. Such an error ends the evaluation: && and || and the
     * macros never absorb it. */
    bool fatal;
};

static int eval_node(struct eval *ev, const struct cel_ast *ast,
                     struct cel_value *out, struct pg_error **err);

static void eval_error(struct pg_error **err, const struct cel_ast *at,
                       const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets err to "LINE:COLUMN: message" with status 400. */
static void
eval_error(struct pg_error **err, const struct cel_ast *at, const char *fmt,
           ...)
{
    char message[PG_ERROR_MESSAGE_MAX];
    va_list ap;

    va_start(ap, fmt);
    vsnprintf(message, sizeof(message), fmt, ap);
    va_end(ap);
    pg_error_set(err, 400, PG_ERR_CONFIG, "%u:%u: %s", at->line, at->column,
                 message);
}

static void
error_no_overload(struct pg_error **err, const struct cel_ast *at,
                  const char *function, const struct cel_value *args,
                  size_t count)
{
    char list[256] = "";
    size_t len = 0;

    for (size_t i = 0; i < count && len < sizeof(list); i++)
        len += (size_t)snprintf(list + len, sizeof(list) - len, "%s%s",
                                i > 0 ? ", " : "", type_names[args[i].type]);
    eval_error(err, at, "no matching overload for '%s' applied to (%s)",
               function, list);
}

static void
error_memory(struct eval *ev, struct pg_error **err)
{
    ev->fatal = true;
    pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                 "out of memory while evaluating a CEL expression; retry "
                 "later");
}

/* Counts n evaluation steps. Returns 0, or -1 with err set once the total
 * passes CEL_EVAL_STEPS_MAX. */
static int
charge_steps(struct eval *ev, const struct cel_ast *at, uint64_t n,
             struct pg_error **err)
{
    ev->steps += n;
    if (ev->steps <= CEL_EVAL_STEPS_MAX)
        return 0;
    ev->fatal = true;
    eval_error(err, at,
               "the expression needs more than the maximum of %u "
               "evaluation steps; simplify it or nest fewer macros",
               (unsigned)CEL_EVAL_STEPS_MAX);
    return -1;
}

/* Allocates size bytes that live until the evaluation ends. Returns NULL
 * with err set when the arena would pass CEL_EVAL_MEMORY_MAX. */
static void *
arena_alloc(struct eval *ev, const struct cel_ast *at, size_t size,
            struct pg_error **err)
{
    struct arena_block *block;

    if (size > CEL_EVAL_MEMORY_MAX - ev->memory) {
        ev->fatal = true;
        eval_error(err, at,
                   "the expression needs more than the maximum of %u MiB "
                   "of memory",
                   (unsigned)(CEL_EVAL_MEMORY_MAX >> 20));
        return NULL;
    }
    block = malloc(sizeof(*block) + size);
    if (block == NULL) {
        error_memory(ev, err);
        return NULL;
    }
    ev->memory += size;
    block->next = ev->blocks;
    ev->blocks = block;
    return block->data;
}

/* Checks that a string or list of size bytes stays within
 * CEL_VALUE_BYTES_MAX. */
static int
check_value_size(struct eval *ev, const struct cel_ast *at, size_t size,
                 const char *what, struct pg_error **err)
{
    if (size <= CEL_VALUE_BYTES_MAX)
        return 0;
    ev->fatal = true;
    eval_error(err, at,
               "the %s would be larger than the maximum of %u MiB for one "
               "value",
               what, (unsigned)(CEL_VALUE_BYTES_MAX >> 20));
    return -1;
}

/* Allocates an uninitialized string of len bytes plus its NUL byte. */
static char *
new_string(struct eval *ev, const struct cel_ast *at, size_t len,
           struct cel_value *out, struct pg_error **err)
{
    char *data;

    if (check_value_size(ev, at, len, "string", err) < 0)
        return NULL;
    data = arena_alloc(ev, at, len + 1, err);
    if (data == NULL)
        return NULL;
    data[len] = '\0';
    out->type = CEL_TYPE_STRING;
    out->from_json = false;
    out->u.string.data = data;
    out->u.string.len = len;
    return data;
}

/* Allocates a list of count items for the caller to fill. */
static struct cel_value *
new_list(struct eval *ev, const struct cel_ast *at, size_t count,
         struct cel_value *out, struct pg_error **err)
{
    struct cel_list *list;
    struct cel_value *items;

    if (count > CEL_VALUE_BYTES_MAX / sizeof(*items)) {
        check_value_size(ev, at, SIZE_MAX, "list", err);
        return NULL;
    }
    list = arena_alloc(ev, at, sizeof(*list) + count * sizeof(*items), err);
    if (list == NULL)
        return NULL;
    items = (struct cel_value *)(list + 1);
    list->count = count;
    list->items = items;
    out->type = CEL_TYPE_LIST;
    out->from_json = false;
    out->u.list = list;
    return items;
}

/* Converts a JSON value of the input, which it borrows. */
static void
value_from_json(const json_t *json, struct cel_value *out)
{
    memset(out, 0, sizeof(*out));
    switch (json_typeof(json)) {
    case JSON_OBJECT:
        out->type = CEL_TYPE_MAP;
        out->from_json = true;
        out->u.json = json;
        break;
    case JSON_ARRAY:
        out->type = CEL_TYPE_LIST;
        out->from_json = true;
        out->u.json = json;
        break;
    case JSON_STRING:
        out->type = CEL_TYPE_STRING;
        out->u.string.data = json_string_value(json);
        out->u.string.len = json_string_length(json);
        break;
    case JSON_INTEGER:
        out->type = CEL_TYPE_INT;
        out->u.int64 = json_integer_value(json);
        break;
    case JSON_REAL:
        out->type = CEL_TYPE_DOUBLE;
        out->u.float64 = json_real_value(json);
        break;
    case JSON_TRUE:
    case JSON_FALSE:
        out->type = CEL_TYPE_BOOL;
        out->u.boolean = json_is_true(json);
        break;
    default:
        out->type = CEL_TYPE_NULL;
        break;
    }
}

static size_t
list_size(const struct cel_value *list)
{
    return list->from_json ? json_array_size(list->u.json)
                           : list->u.list->count;
}

static void
list_get(const struct cel_value *list, size_t i, struct cel_value *out)
{
    if (list->from_json)
        value_from_json(json_array_get(list->u.json, i), out);
    else
        *out = list->u.list->items[i];
}

static size_t
map_size(const struct cel_value *map)
{
    return map->from_json ? json_object_size(map->u.json) : map->u.map->count;
}

static struct cel_value
make_bool(bool value)
{
    struct cel_value v = {.type = CEL_TYPE_BOOL};

    v.u.boolean = value;
    return v;
}

/* ---- Numeric comparison across int, uint and double. ---- */

/* The order of two numbers: -1, 0, 1, or ORDER_NONE when one is NaN. */
#define ORDER_NONE 2

/* Returns -1, 0 or 1 as a is below, equal to or above b. */
#define ORDER(a, b) (((a) > (b)) - ((a) < (b)))

static int
order_of(double a, double b)
{
    if (isnan(a) || isnan(b))
        return ORDER_NONE;
    return ORDER(a, b);
}

static int
order_int_uint(int64_t a, uint64_t b)
{
    if (a < 0)
        return -1;
    return ORDER((uint64_t)a, b);
}

/*
 * Orders an int and a double exactly. Converting the int to a double could
 * round, so the double is split into its integral part, which fits an
 * int64 inside the range checked first, and its fraction.
 */
static int
order_int_double(int64_t a, double b)
{
    int64_t whole;
    double fraction;

    if (isnan(b))
        return ORDER_NONE;
    if (b >= 9223372036854775808.0)
        return -1;
    if (b < -9223372036854775808.0)
        return 1;
    whole = (int64_t)b;
    if (a != whole)
        return ORDER(a, whole);
    fraction = b - (double)whole;
    return ORDER(0.0, fraction);
}

static int
order_uint_double(uint64_t a, double b)
{
    uint64_t whole;
    double fraction;

    if (isnan(b))
        return ORDER_NONE;
    if (b >= 18446744073709551616.0)
        return -1;
    if (b < 0)
        return 1;
    whole = (uint64_t)b;
    if (a != whole)
        return ORDER(a, whole);
    fraction = b - (double)whole;
    return ORDER(0.0, fraction);
}

static bool
is_number(const struct cel_value *v)
{
    return v->type == CEL_TYPE_INT || v->type == CEL_TYPE_UINT ||
           v->type == CEL_TYPE_DOUBLE;
}

/* Orders two numbers of any numeric types on one number line. */
static int
order_numbers(const struct cel_value *a, const struct cel_value *b)
{
    if (a->type == CEL_TYPE_INT && b->type == CEL_TYPE_INT)
        return ORDER(a->u.int64, b->u.int64);
    if (a->type == CEL_TYPE_UINT && b->type == CEL_TYPE_UINT)
        return ORDER(a->u.uint64, b->u.uint64);
    if (a->type == CEL_TYPE_DOUBLE && b->type == CEL_TYPE_DOUBLE)
        return order_of(a->u.float64, b->u.float64);
    if (a->type == CEL_TYPE_INT && b->type == CEL_TYPE_UINT)
        return order_int_uint(a->u.int64, b->u.uint64);
    if (a->type == CEL_TYPE_INT)
        return order_int_double(a->u.int64, b->u.float64);
    if (a->type == CEL_TYPE_UINT && b->type == CEL_TYPE_INT)
        return -order_int_uint(b->u.int64, a->u.uint64);
    if (a->type == CEL_TYPE_UINT)
        return order_uint_double(a->u.uint64, b->u.float64);

    /* a is a double and b an int or uint: swap and invert. */
    int order = b->type == CEL_TYPE_INT
                    ? order_int_double(b->u.int64, a->u.float64)
                    : order_uint_double(b->u.uint64, a->u.float64);
    return order == ORDER_NONE ? order : -order;
}

static int
order_strings(const struct cel_value *a, const struct cel_value *b)
{
    size_t n =
        a->u.string.len < b->u.string.len ? a->u.string.len : b->u.string.len;
    int c = memcmp(a->u.string.data, b->u.string.data, n);

    /* Bytes of UTF-8 order as the code points they encode do. */
    if (c != 0)
        return ORDER(c, 0);
    return ORDER(a->u.string.len, b->u.string.len);
}

/* ---- Equality. ---- */

static bool values_equal(struct eval *ev, const struct cel_value *a,
                         const struct cel_value *b);

/* Looks key up in a map with CEL equality, so 1, 1u and 1.0 find the same
 * entry. Returns whether it is present and stores its value in *value. */
static bool
map_find(struct eval *ev, const struct cel_value *map,
         const struct cel_value *key, struct cel_value *value)
{
    if (map->from_json) {
        const json_t *found;

        /* The input's keys are strings without NUL bytes. */
        if (key->type != CEL_TYPE_STRING ||
            memchr(key->u.string.data, '\0', key->u.string.len) != NULL)
            return false;
        found = json_object_get(map->u.json, key->u.string.data);
        if (found == NULL)
            return false;
        value_from_json(found, value);
        return true;
    }
    for (size_t i = 0; i < map->u.map->count; i++) {
        if (values_equal(ev, &map->u.map->keys[i], key)) {
            *value = map->u.map->values[i];
            return true;
        }
    }
    return false;
}

static bool
lists_equal(struct eval *ev, const struct cel_value *a,
            const struct cel_value *b)
{
    size_t count = list_size(a);

    if (count != list_size(b))
        return false;
    for (size_t i = 0; i < count; i++) {
        struct cel_value x, y;

        list_get(a, i, &x);
        list_get(b, i, &y);
        if (!values_equal(ev, &x, &y))
            return false;
    }
    return true;
}

/* Compares maps entry by entry. Both have the same size, so every key of
 * a found in b with an equal value makes them equal. */
static bool
maps_equal(struct eval *ev, const struct cel_value *a,
           const struct cel_value *b)
{
    struct cel_value key, x, y;

    if (map_size(a) != map_size(b))
        return false;
    if (a->from_json) {
        const char *name;
        const json_t *member;

        json_object_foreach((json_t *)a->u.json, name, member)
        {
            memset(&key, 0, sizeof(key));
            key.type = CEL_TYPE_STRING;
            key.u.string.data = name;
            key.u.string.len = strlen(name);
            value_from_json(member, &x);
            if (!map_find(ev, b, &key, &y) || !values_equal(ev, &x, &y))
                return false;
        }
        return true;
    }
    for (size_t i = 0; i < a->u.map->count; i++) {
        if (!map_find(ev, b, &a->u.map->keys[i], &y) ||
            !values_equal(ev, &a->u.map->values[i], &y))
            return false;
    }
    return true;
}

/*
 * CEL's heterogeneous equality: numbers compare by value whatever their
 * types, lists and maps element by element, NaN equals nothing, and any
 * other two values of different types are unequal. Each call counts a
 * step, so comparing big lists inside macros reaches the step limit.
 */
static bool
values_equal(struct eval *ev, const struct cel_value *a,
             const struct cel_value *b)
{
    ev->steps++;
    if (is_number(a) && is_number(b))
        return order_numbers(a, b) == 0;
    if (a->type != b->type)
        return false;
    switch (a->type) {
    case CEL_TYPE_NULL:
        return true;
    case CEL_TYPE_BOOL:
        return a->u.boolean == b->u.boolean;
    case CEL_TYPE_STRING:
        return order_strings(a, b) == 0;
    case CEL_TYPE_LIST:
        return lists_equal(ev, a, b);
    case CEL_TYPE_MAP:
        return maps_equal(ev, a, b);
    default:
        return false;
    }
}

/* Copies the keys of a map, in insertion order, into keys[map_size()]. */
static void
map_keys(const struct cel_value *map, struct cel_value *keys)
{
    const char *name;
    const json_t *member;
    size_t i = 0;

    if (!map->from_json) {
        memcpy(keys, map->u.map->keys, map->u.map->count * sizeof(*keys));
        return;
    }
    json_object_foreach((json_t *)map->u.json, name, member)
    {
        (void)member;
        memset(&keys[i], 0, sizeof(keys[i]));
        keys[i].type = CEL_TYPE_STRING;
        keys[i].u.string.data = name;
        keys[i].u.string.len = strlen(name);
        i++;
    }
}

/* ---- Arithmetic. ---- */

static int
arith_int(const struct cel_ast *at, int64_t a, int64_t b, struct cel_value *out,
          struct pg_error **err)
{
    int64_t r = 0;
    bool overflow = false;

    switch (at->op) {
    case CEL_OP_ADD:
        overflow = __builtin_add_overflow(a, b, &r);
        break;
    case CEL_OP_SUBTRACT:
        overflow = __builtin_sub_overflow(a, b, &r);
        break;
    case CEL_OP_MULTIPLY:
        overflow = __builtin_mul_overflow(a, b, &r);
        break;
    case CEL_OP_DIVIDE:
    case CEL_OP_MODULO:
        if (b == 0) {
            eval_error(err, at,
                       at->op == CEL_OP_DIVIDE ? "division by zero"
                                               : "modulus by zero");
            return -1;
        }
        /* INT64_MIN / -1 is 2^63, which no int64 holds, and C leaves
         * INT64_MIN % -1 undefined as well. */
        overflow = a == INT64_MIN && b == -1;
        if (!overflow)
            r = at->op == CEL_OP_DIVIDE ? a / b : a % b;
        break;
    default:
        break;
    }
    if (overflow) {
        eval_error(err, at, "integer overflow");
        return -1;
    }
    out->type = CEL_TYPE_INT;
    out->u.int64 = r;
    return 0;
}

static int
arith_uint(const struct cel_ast *at, uint64_t a, uint64_t b,
           struct cel_value *out, struct pg_error **err)
{
    uint64_t r = 0;
    bool overflow = false;

    switch (at->op) {
    case CEL_OP_ADD:
        overflow = __builtin_add_overflow(a, b, &r);
        break;
    case CEL_OP_SUBTRACT:
        overflow = __builtin_sub_overflow(a, b, &r);
        break;
    case CEL_OP_MULTIPLY:
        overflow = __builtin_mul_overflow(a, b, &r);
        break;
    case CEL_OP_DIVIDE:
    case CEL_OP_MODULO:
        if (b == 0) {
            eval_error(err, at,
                       at->op == CEL_OP_DIVIDE ? "division by zero"
                                               : "modulus by zero");
            return -1;
        }
        r = at->op == CEL_OP_DIVIDE ? a / b : a % b;
        break;
    default:
        break;
    }
    if (overflow) {
        eval_error(err, at, "unsigned integer overflow");
        return -1;
    }
    out->type = CEL_TYPE_UINT;
    out->u.uint64 = r;
    return 0;
}

static int
arith_double(const struct cel_ast *at, double a, double b,
             struct cel_value *out)
{
    out->type = CEL_TYPE_DOUBLE;
    switch (at->op) {
    case CEL_OP_ADD:
        out->u.float64 = a + b;
        break;
    case CEL_OP_SUBTRACT:
        out->u.float64 = a - b;
        break;
    case CEL_OP_MULTIPLY:
        out->u.float64 = a * b;
        break;
    default:
        out->u.float64 = a / b;
        break;
    }
    return 0;
}

static int
concat_strings(struct eval *ev, const struct cel_ast *at,
               const struct cel_value *a, const struct cel_value *b,
               struct cel_value *out, struct pg_error **err)
{
    size_t len = a->u.string.len + b->u.string.len;
    char *data;

    /* Both strings are in memory, so their sizes cannot add up past
     * SIZE_MAX, and new_string() checks the sum against the limit. */
    data = new_string(ev, at, len, out, err);
    if (data == NULL)
        return -1;
    memcpy(data, a->u.string.data, a->u.string.len);
    memcpy(data + a->u.string.len, b->u.string.data, b->u.string.len);
    return charge_steps(ev, at, len / 1024, err);
}

static int
concat_lists(struct eval *ev, const struct cel_ast *at,
             const struct cel_value *a, const struct cel_value *b,
             struct cel_value *out, struct pg_error **err)
{
    size_t first = list_size(a), second = list_size(b);
    struct cel_value *items;

    items = new_list(ev, at, first + second, out, err);
    if (items == NULL)
        return -1;
    for (size_t i = 0; i < first; i++)
        list_get(a, i, &items[i]);
    for (size_t i = 0; i < second; i++)
        list_get(b, i, &items[first + i]);
    return charge_steps(ev, at, first + second, err);
}

static const char *const arith_functions[] = {
    [CEL_OP_ADD] = "_+_",      [CEL_OP_SUBTRACT] = "_-_",
    [CEL_OP_MULTIPLY] = "_*_", [CEL_OP_DIVIDE] = "_/_",
    [CEL_OP_MODULO] = "_%_",
};

/* Applies + - * / % to two values of the same type. int and uint never
 * mix, and % has no double overload. */
static int
eval_arithmetic(struct eval *ev, const struct cel_ast *at,
                const struct cel_value args[2], struct cel_value *out,
                struct pg_error **err)
{
    enum cel_type type = args[0].type;

    memset(out, 0, sizeof(*out));
    if (type == args[1].type) {
        if (type == CEL_TYPE_INT)
            return arith_int(at, args[0].u.int64, args[1].u.int64, out, err);
        if (type == CEL_TYPE_UINT)
            return arith_uint(at, args[0].u.uint64, args[1].u.uint64, out, err);
        if (type == CEL_TYPE_DOUBLE && at->op != CEL_OP_MODULO)
            return arith_double(at, args[0].u.float64, args[1].u.float64, out);
        if (type == CEL_TYPE_STRING && at->op == CEL_OP_ADD)
            return concat_strings(ev, at, &args[0], &args[1], out, err);
        if (type == CEL_TYPE_LIST && at->op == CEL_OP_ADD)
            return concat_lists(ev, at, &args[0], &args[1], out, err);
    }
    error_no_overload(err, at, arith_functions[at->op], args, 2);
    return -1;
}

/* ---- Relations: < <= > >= == != in. ---- */

static const char *const relation_functions[] = {
    [CEL_OP_LT] = "_<_", [CEL_OP_LE] = "_<=_", [CEL_OP_GE] = "_>=_",
    [CEL_OP_GT] = "_>_", [CEL_OP_EQ] = "_==_", [CEL_OP_NE] = "_!=_",
    [CEL_OP_IN] = "@in",
};

static int
eval_ordering(const struct cel_ast *at, const struct cel_value args[2],
              struct cel_value *out, struct pg_error **err)
{
    const struct cel_value *a = &args[0], *b = &args[1];
    int order;

    if (is_number(a) && is_number(b))
        order = order_numbers(a, b);
    else if (a->type == CEL_TYPE_STRING && b->type == CEL_TYPE_STRING)
        order = order_strings(a, b);
    else if (a->type == CEL_TYPE_BOOL && b->type == CEL_TYPE_BOOL)
        order = (int)a->u.boolean - (int)b->u.boolean;
    else {
        error_no_overload(err, at, relation_functions[at->op], args, 2);
        return -1;
    }

    /* NaN is unordered, so every ordering with it is false. */
    switch (at->op) {
    case CEL_OP_LT:
        *out = make_bool(order == -1);
        break;
    case CEL_OP_LE:
        *out = make_bool(order == -1 || order == 0);
        break;
    case CEL_OP_GE:
        *out = make_bool(order == 1 || order == 0);
        break;
    default:
        *out = make_bool(order == 1);
        break;
    }
    return 0;
}

static int
eval_in(struct eval *ev, const struct cel_ast *at,
        const struct cel_value args[2], struct cel_value *out,
        struct pg_error **err)
{
    const struct cel_value *container = &args[1];
    struct cel_value found;

    if (container->type == CEL_TYPE_MAP) {
        *out = make_bool(map_find(ev, container, &args[0], &found));
        return charge_steps(ev, at, 1, err);
    }
    if (container->type != CEL_TYPE_LIST) {
        error_no_overload(err, at, "@in", args, 2);
        return -1;
    }
    *out = make_bool(false);
    for (size_t i = 0; i < list_size(container); i++) {
        list_get(container, i, &found);
        if (values_equal(ev, &args[0], &found)) {
            *out = make_bool(true);
            break;
        }
    }
    return charge_steps(ev, at, 0, err);
}

/* ---- Logic. ---- */

/*
 * Evaluates && and || as CEL defines them, so that they commute: a false
 * operand of && (a true operand of ||) decides the result even when the
 * other operand is an error or not a bool. Otherwise the first error
 * wins. An error of a passed limit is never absorbed.
 */
static int
eval_logic(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
           struct pg_error **err)
{
    bool decisive = ast->op == CEL_OP_OR;
    struct cel_value args[2];
    struct pg_error *errors[2] = {NULL, NULL};
    int status[2];
    int rc = -1;

    for (int i = 0; i < 2; i++) {
        status[i] = eval_node(ev, ast->children[i], &args[i], &errors[i]);
        if (ev->fatal) {
            /* The limit's error replaces an earlier one of the left. */
            if (i == 1) {
                pg_error_free(errors[0]);
                errors[0] = NULL;
            }
            goto out;
        }
        if (status[i] == 0 && args[i].type == CEL_TYPE_BOOL &&
            args[i].u.boolean == decisive) {
            *out = make_bool(decisive);
            rc = 0;
            goto out;
        }
    }
    if (status[0] == 0 && status[1] == 0 && args[0].type == CEL_TYPE_BOOL &&
        args[1].type == CEL_TYPE_BOOL) {
        *out = make_bool(!decisive);
        rc = 0;
        goto out;
    }
    if (status[0] == 0 && status[1] == 0)
        error_no_overload(err, ast, decisive ? "_||_" : "_&&_", args, 2);
    else if (status[0] == 0 && args[0].type != CEL_TYPE_BOOL)
        error_no_overload(err, ast, decisive ? "_||_" : "_&&_", args, 1);

out:
    if (rc < 0) {
        for (int i = 0; i < 2; i++) {
            if (errors[i] != NULL) {
                pg_error_set(err, errors[i]->status, errors[i]->code, "%s",
                             errors[i]->message);
                break;
            }
        }
    }
    pg_error_free(errors[0]);
    pg_error_free(errors[1]);
    return rc;
}

static int
eval_unary(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
           struct pg_error **err)
{
    struct cel_value arg;

    if (eval_node(ev, ast->children[0], &arg, err) < 0)
        return -1;
    *out = arg;
    if (ast->op == CEL_OP_NOT && arg.type == CEL_TYPE_BOOL) {
        out->u.boolean = !arg.u.boolean;
        return 0;
    }
    if (ast->op == CEL_OP_NEGATE && arg.type == CEL_TYPE_INT) {
        if (arg.u.int64 == INT64_MIN) {
            eval_error(err, ast, "integer overflow");
            return -1;
        }
        out->u.int64 = -arg.u.int64;
        return 0;
    }
    if (ast->op == CEL_OP_NEGATE && arg.type == CEL_TYPE_DOUBLE) {
        out->u.float64 = -arg.u.float64;
        return 0;
    }
    error_no_overload(err, ast, ast->op == CEL_OP_NOT ? "!_" : "-_", &arg, 1);
    return -1;
}

static int
eval_binary(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
            struct pg_error **err)
{
    struct cel_value args[2];

    if (ast->op == CEL_OP_AND || ast->op == CEL_OP_OR)
        return eval_logic(ev, ast, out, err);
    for (int i = 0; i < 2; i++)
        if (eval_node(ev, ast->children[i], &args[i], err) < 0)
            return -1;

    switch (ast->op) {
    case CEL_OP_EQ:
    case CEL_OP_NE:
        *out = make_bool(values_equal(ev, &args[0], &args[1]) ==
                         (ast->op == CEL_OP_EQ));
        return charge_steps(ev, ast, 0, err);
    case CEL_OP_IN:
        return eval_in(ev, ast, args, out, err);
    case CEL_OP_LT:
    case CEL_OP_LE:
    case CEL_OP_GE:
    case CEL_OP_GT:
        return eval_ordering(ast, args, out, err);
    default:
        return eval_arithmetic(ev, ast, args, out, err);
    }
}

static int
eval_conditional(struct eval *ev, const struct cel_ast *ast,
                 struct cel_value *out, struct pg_error **err)
{
    struct cel_value condition;

    if (eval_node(ev, ast->children[0], &condition, err) < 0)
        return -1;
    if (condition.type != CEL_TYPE_BOOL) {
        error_no_overload(err, ast, "_?_:_", &condition, 1);
        return -1;
    }
    return eval_node(ev, ast->children[condition.u.boolean ? 1 : 2], out, err);
}

/* ---- Names, selection and indexing. ---- */

static int
eval_ident(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
           struct pg_error **err)
{
    const json_t *member;

    for (size_t i = ev->binding_count; i > 0; i--) {
        if (strcmp(ev->bindings[i - 1].name, ast->name) == 0) {
            *out = ev->bindings[i - 1].value;
            return 0;
        }
    }
    member = ev->input != NULL ? json_object_get(ev->input, ast->name) : NULL;
    if (member == NULL) {
        eval_error(err, ast, "no such attribute: '%s'", ast->name);
        return -1;
    }
    value_from_json(member, out);
    return 0;
}

/* Sets err to "no such key" with the key that was not found. */
static void
error_no_such_key(struct pg_error **err, const struct cel_ast *at,
                  const struct cel_value *key)
{
    switch (key->type) {
    case CEL_TYPE_STRING:
        eval_error(err, at, "no such key: '%.*s'",
                   (int)(key->u.string.len > 200 ? 200 : key->u.string.len),
                   key->u.string.data);
        break;
    case CEL_TYPE_INT:
        eval_error(err, at, "no such key: %" PRId64, key->u.int64);
        break;
    case CEL_TYPE_UINT:
        eval_error(err, at, "no such key: %" PRIu64 "u", key->u.uint64);
        break;
    case CEL_TYPE_BOOL:
        eval_error(err, at, "no such key: %s",
                   key->u.boolean ? "true" : "false");
        break;
    default:
        eval_error(err, at, "no such key of type %s", type_names[key->type]);
        break;
    }
}

static int
eval_select(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
            struct pg_error **err)
{
    struct cel_value operand, key = {.type = CEL_TYPE_STRING};
    bool found;

    if (eval_node(ev, ast->children[0], &operand, err) < 0)
        return -1;
    if (operand.type != CEL_TYPE_MAP) {
        eval_error(err, ast,
                   "no such attribute: '%s' on a value of type %s; only "
                   "maps have fields",
                   ast->name, type_names[operand.type]);
        return -1;
    }
    key.u.string.data = ast->name;
    key.u.string.len = strlen(ast->name);
    found = map_find(ev, &operand, &key, out);
    if (ast->kind == CEL_AST_HAS) {
        *out = make_bool(found);
        return 0;
    }
    if (!found) {
        error_no_such_key(err, ast, &key);
        return -1;
    }
    return 0;
}

static int
eval_index(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
           struct pg_error **err)
{
    struct cel_value args[2];
    const struct cel_value *index = &args[1];

    for (int i = 0; i < 2; i++)
        if (eval_node(ev, ast->children[i], &args[i], err) < 0)
            return -1;
    if (args[0].type == CEL_TYPE_MAP) {
        if (map_find(ev, &args[0], index, out))
            return 0;
        error_no_such_key(err, ast, index);
        return -1;
    }
    if (args[0].type == CEL_TYPE_LIST &&
        (index->type == CEL_TYPE_INT || index->type == CEL_TYPE_UINT)) {
        size_t size = list_size(&args[0]);
        bool negative = index->type == CEL_TYPE_INT && index->u.int64 < 0;
        uint64_t i = index->type == CEL_TYPE_INT ? (uint64_t)index->u.int64
                                                 : index->u.uint64;

        if (negative || i >= size) {
            if (index->type == CEL_TYPE_INT)
                eval_error(err, ast,
                           "index %" PRId64 " out of range for a list of "
                           "size %zu",
                           index->u.int64, size);
            else
                eval_error(err, ast,
                           "index %" PRIu64 "u out of range for a list of "
                           "size %zu",
                           index->u.uint64, size);
            return -1;
        }
        list_get(&args[0], (size_t)i, out);
        return 0;
    }
    error_no_overload(err, ast, "_[_]", args, 2);
    return -1;
}

/* ---- Literals. ---- */

static int
eval_list(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
          struct pg_error **err)
{
    struct cel_value *items = new_list(ev, ast, ast->child_count, out, err);

    if (items == NULL)
        return -1;
    for (size_t i = 0; i < ast->child_count; i++)
        if (eval_node(ev, ast->children[i], &items[i], err) < 0)
            return -1;
    return 0;
}

static int
eval_map(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
         struct pg_error **err)
{
    size_t count = ast->child_count / 2;
    struct cel_map *map;
    struct cel_value unused;

    map = arena_alloc(ev, ast, sizeof(*map) + 2 * count * sizeof(*map->keys),
                      err);
    if (map == NULL)
        return -1;
    map->keys = (struct cel_value *)(map + 1);
    map->values = map->keys + count;
    map->count = 0;
    out->type = CEL_TYPE_MAP;
    out->from_json = false;
    out->u.map = map;

    for (size_t i = 0; i < count; i++) {
        const struct cel_ast *key_node = ast->children[2 * i];
        struct cel_value key;

        if (eval_node(ev, key_node, &key, err) < 0)
            return -1;
        if (key.type != CEL_TYPE_STRING && key.type != CEL_TYPE_INT &&
            key.type != CEL_TYPE_UINT && key.type != CEL_TYPE_BOOL) {
            eval_error(err, key_node,
                       "unsupported map key type %s; keys are int, uint, "
                       "bool or string",
                       type_names[key.type]);
            return -1;
        }
        if (map_find(ev, out, &key, &unused)) {
            eval_error(err, key_node, "repeated key in map literal");
            return -1;
        }
        if (eval_node(ev, ast->children[2 * i + 1], &map->values[i], err) < 0)
            return -1;
        map->keys[i] = key;
        map->count++;
    }
    return 0;
}

static int
eval_literal(const struct cel_ast *ast, struct cel_value *out)
{
    memset(out, 0, sizeof(*out));
    switch (ast->kind) {
    case CEL_AST_BOOL:
        out->type = CEL_TYPE_BOOL;
        out->u.boolean = ast->value.boolean;
        break;
    case CEL_AST_INT:
        out->type = CEL_TYPE_INT;
        out->u.int64 = ast->value.int64;
        break;
    case CEL_AST_UINT:
        out->type = CEL_TYPE_UINT;
        out->u.uint64 = ast->value.uint64;
        break;
    case CEL_AST_DOUBLE:
        out->type = CEL_TYPE_DOUBLE;
        out->u.float64 = ast->value.float64;
        break;
    case CEL_AST_STRING:
        out->type = CEL_TYPE_STRING;
        out->u.string.data = ast->string;
        out->u.string.len = ast->string_len;
        break;
    default:
        out->type = CEL_TYPE_NULL;
        break;
    }
    return 0;
}

/* ---- Functions. ---- */

/* Shows at most this many bytes of a string in an error message. */
#define CEL_MESSAGE_QUOTE_MAX 100

static int
quote_len(const struct cel_value *v)
{
    return (int)(v->u.string.len > CEL_MESSAGE_QUOTE_MAX ? CEL_MESSAGE_QUOTE_MAX
                                                         : v->u.string.len);
}

/* Counts the code points of valid UTF-8: every byte but the continuation
 * bytes 10xxxxxx starts one. */
static size_t
count_code_points(const char *data, size_t len)
{
    size_t count = 0;

    for (size_t i = 0; i < len; i++)
        if (((unsigned char)data[i] & 0xC0) != 0x80)
            count++;
    return count;
}

static int
call_size(struct eval *ev, const struct cel_ast *ast, struct cel_value *args,
          struct cel_value *out, struct pg_error **err)
{
    size_t size;

    if (args[0].type == CEL_TYPE_STRING)
        size = count_code_points(args[0].u.string.data, args[0].u.string.len);
    else if (args[0].type == CEL_TYPE_LIST)
        size = list_size(&args[0]);
    else if (args[0].type == CEL_TYPE_MAP)
        size = map_size(&args[0]);
    else {
        error_no_overload(err, ast, "size", args, 1);
        return -1;
    }
    out->type = CEL_TYPE_INT;
    out->u.int64 = (int64_t)size;
    return 0;
}

static void
error_range(struct pg_error **err, const struct cel_ast *at,
            const struct cel_value *v, const char *target)
{
    if (v->type == CEL_TYPE_INT)
        eval_error(err, at, "range error converting %" PRId64 " to %s",
                   v->u.int64, target);
    else if (v->type == CEL_TYPE_UINT)
        eval_error(err, at, "range error converting %" PRIu64 "u to %s",
                   v->u.uint64, target);
    else
        eval_error(err, at, "range error converting %g to %s", v->u.float64,
                   target);
}

static void
error_parse(struct pg_error **err, const struct cel_ast *at,
            const struct cel_value *v, const char *target)
{
    eval_error(err, at, "cannot convert string '%.*s' to %s", quote_len(v),
               v->u.string.data, target);
}

/* Parses a string of base-10 digits with an optional leading '-' as an
 * int. Spaces, '+', prefixes such as 0x and trailing text are errors. */
static int
parse_int(const struct cel_value *v, int64_t *value)
{
    bool negative = v->u.string.len > 0 && v->u.string.data[0] == '-';
    uint64_t magnitude;

    if (pg_parse_u64_n(v->u.string.data + negative, v->u.string.len - negative,
                       (uint64_t)INT64_MAX + negative, &magnitude) < 0)
        return -1;
    /* Negating in unsigned arithmetic reaches INT64_MIN without overflow. */
    *value = negative ? (int64_t)(0 - magnitude) : (int64_t)magnitude;
    return 0;
}

static int
call_int(struct eval *ev, const struct cel_ast *ast, struct cel_value *args,
         struct cel_value *out, struct pg_error **err)
{
    const struct cel_value *v = &args[0];

    out->type = CEL_TYPE_INT;
    switch (v->type) {
    case CEL_TYPE_INT:
        out->u.int64 = v->u.int64;
        return 0;
    case CEL_TYPE_UINT:
        if (v->u.uint64 > INT64_MAX)
            break;
        out->u.int64 = (int64_t)v->u.uint64;
        return 0;
    case CEL_TYPE_DOUBLE:
        /* Truncation toward zero must land in [-2^63, 2^63). NaN fails
         * both comparisons. */
        if (!(v->u.float64 >= -9223372036854775808.0 &&
              v->u.float64 < 9223372036854775808.0))
            break;
        out->u.int64 = (int64_t)v->u.float64;
        return 0;
    case CEL_TYPE_STRING:
        if (parse_int(v, &out->u.int64) == 0)
            return 0;
        error_parse(err, ast, v, "int");
        return -1;
    default:
        error_no_overload(err, ast, "int", args, 1);
        return -1;
    }
    error_range(err, ast, v, "int");
    return -1;
}

static int
call_uint(struct eval *ev, const struct cel_ast *ast, struct cel_value *args,
          struct cel_value *out, struct pg_error **err)
{
    const struct cel_value *v = &args[0];

    out->type = CEL_TYPE_UINT;
    switch (v->type) {
    case CEL_TYPE_INT:
        if (v->u.int64 < 0)
            break;
        out->u.uint64 = (uint64_t)v->u.int64;
        return 0;
    case CEL_TYPE_UINT:
        out->u.uint64 = v->u.uint64;
        return 0;
    case CEL_TYPE_DOUBLE:
        /* Truncation toward zero must land in [0, 2^64). */
        if (!(v->u.float64 > -1.0 && v->u.float64 < 18446744073709551616.0))
            break;
        out->u.uint64 = (uint64_t)v->u.float64;
        return 0;
    case CEL_TYPE_STRING:
        if (pg_parse_u64_n(v->u.string.data, v->u.string.len, UINT64_MAX,
                           &out->u.uint64) == 0)
            return 0;
        error_parse(err, ast, v, "uint");
        return -1;
    default:
        error_no_overload(err, ast, "uint", args, 1);
        return -1;
    }
    error_range(err, ast, v, "uint");
    return -1;
}

static int
call_double(struct eval *ev, const struct cel_ast *ast, struct cel_value *args,
            struct cel_value *out, struct pg_error **err)
{
    const struct cel_value *v = &args[0];
    char *end;

    out->type = CEL_TYPE_DOUBLE;
    switch (v->type) {
    case CEL_TYPE_INT:
        out->u.float64 = (double)v->u.int64;
        return 0;
    case CEL_TYPE_UINT:
        out->u.float64 = (double)v->u.uint64;
        return 0;
    case CEL_TYPE_DOUBLE:
        out->u.float64 = v->u.float64;
        return 0;
    case CEL_TYPE_STRING:
        /* strtod skips leading spaces, which the check of the first byte
         * rejects. The string ends in a NUL byte, so strtod stops there at
         * the latest. */
        if (v->u.string.len > 0 &&
            (isdigit((unsigned char)v->u.string.data[0]) ||
             strchr("+-.iInN", v->u.string.data[0]) != NULL)) {
            out->u.float64 = strtod(v->u.string.data, &end);
            if (end == v->u.string.data + v->u.string.len)
                return 0;
        }
        error_parse(err, ast, v, "double");
        return -1;
    default:
        error_no_overload(err, ast, "double", args, 1);
        return -1;
    }
}

/* Formats a double with the fewest digits that read back to it. */
static void
format_double(double value, char *text, size_t size)
{
    /* The spellings of other CEL implementations, not C's "-nan". */
    if (isnan(value)) {
        snprintf(text, size, "NaN");
        return;
    }
    if (isinf(value)) {
        snprintf(text, size, "%sInf", value > 0 ? "+" : "-");
        return;
    }
    for (int precision = 1; precision <= 17; precision++) {
        snprintf(text, size, "%.*g", precision, value);
        if (strtod(text, NULL) == value)
            return;
    }
}

static int
call_string(struct eval *ev, const struct cel_ast *ast, struct cel_value *args,
            struct cel_value *out, struct pg_error **err)
{
    const struct cel_value *v = &args[0];
    char text[64];
    char *data;

    switch (v->type) {
    case CEL_TYPE_STRING:
        *out = *v;
        return 0;
    case CEL_TYPE_INT:
        snprintf(text, sizeof(text), "%" PRId64, v->u.int64);
        break;
    case CEL_TYPE_UINT:
        snprintf(text, sizeof(text), "%" PRIu64, v->u.uint64);
        break;
    case CEL_TYPE_DOUBLE:
        format_double(v->u.float64, text, sizeof(text));
        break;
    case CEL_TYPE_BOOL:
        snprintf(text, sizeof(text), "%s", v->u.boolean ? "true" : "false");
        break;
    default:
        error_no_overload(err, ast, "string", args, 1);
        return -1;
    }
    data = new_string(ev, ast, strlen(text), out, err);
    if (data == NULL)
        return -1;
    memcpy(data, text, strlen(text));
    return 0;
}

/* contains, startsWith and endsWith, on the bytes of UTF-8 strings. */
static int
call_substring(struct eval *ev, const struct cel_ast *ast,
               struct cel_value *args, struct cel_value *out,
               struct pg_error **err)
{
    const struct cel_value *s = &args[0], *part = &args[1];
    size_t len = s->u.string.len, part_len = part->u.string.len;
    bool result;

    if (s->type != CEL_TYPE_STRING || part->type != CEL_TYPE_STRING) {
        error_no_overload(err, ast, ast->name, args, 2);
        return -1;
    }
    if (part_len > len)
        result = false;
    else if (strcmp(ast->name, "startsWith") == 0)
        result = memcmp(s->u.string.data, part->u.string.data, part_len) == 0;
    else if (strcmp(ast->name, "endsWith") == 0)
        result = memcmp(s->u.string.data + len - part_len, part->u.string.data,
                        part_len) == 0;
    else
        result = part_len == 0 || memmem(s->u.string.data, len,
                                         part->u.string.data, part_len) != NULL;
    *out = make_bool(result);
    return charge_steps(ev, ast, len / 1024, err);
}

/* lowerAscii and upperAscii: changes A-Z (a-z) only and copies every
 * other byte, so UTF-8 sequences stay intact. */
static int
call_case(struct eval *ev, const struct cel_ast *ast, struct cel_value *args,
          struct cel_value *out, struct pg_error **err)
{
    bool upper = strcmp(ast->name, "upperAscii") == 0;
    char *data;

    if (args[0].type != CEL_TYPE_STRING) {
        error_no_overload(err, ast, ast->name, args, 1);
        return -1;
    }
    data = new_string(ev, ast, args[0].u.string.len, out, err);
    if (data == NULL)
        return -1;
    for (size_t i = 0; i < args[0].u.string.len; i++) {
        char c = args[0].u.string.data[i];

        if (upper && c >= 'a' && c <= 'z')
            c = (char)(c - 'a' + 'A');
        else if (!upper && c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        data[i] = c;
    }
    return charge_steps(ev, ast, args[0].u.string.len / 1024, err);
}

/* Returns the compiled pattern of one matches() call site, compiling it
 * on first use and again only when the site's pattern changes. */
static struct regex_entry *
find_regex(struct eval *ev, const struct cel_ast *ast,
           const struct cel_value *pattern, struct pg_error **err)
{
    char why[160];
    struct regex_entry *entry;
    PCRE2_UCHAR message[256];
    PCRE2_SIZE offset;
    int code;

    for (size_t i = 0; i < ev->regex_count; i++) {
        entry = &ev->regexes[i];
        if (entry->site == ast && entry->pattern_len == pattern->u.string.len &&
            memcmp(entry->pattern, pattern->u.string.data,
                   entry->pattern_len) == 0)
            return entry;
    }
    if (ev->regex_count < CEL_REGEX_CACHE_MAX) {
        entry = &ev->regexes[ev->regex_count++];
    } else {
        entry = &ev->regexes[ev->regex_next];
        ev->regex_next = (ev->regex_next + 1) % CEL_REGEX_CACHE_MAX;
        free(entry->pattern);
        pcre2_match_data_free(entry->match_data);
        pcre2_code_free(entry->code);
    }
    memset(entry, 0, sizeof(*entry));

    entry->code =
        pcre2_compile((PCRE2_SPTR)pattern->u.string.data, pattern->u.string.len,
                      PCRE2_UTF, &code, &offset, NULL);
    if (entry->code == NULL) {
        pcre2_get_error_message(code, message, sizeof(message));
        eval_error(err, ast,
                   "invalid regular expression '%.*s': %s at offset %zu",
                   quote_len(pattern), pattern->u.string.data,
                   (const char *)message, (size_t)offset);
        return NULL;
    }
    if (cel_regex_prepare(pattern->u.string.data, pattern->u.string.len,
                          (void **)&entry->code, why, sizeof(why)) < 0) {
        eval_error(err, ast, "invalid regular expression '%.*s': %s",
                   quote_len(pattern), pattern->u.string.data, why);
        /* The entry stays empty, with no site, as after a failed
         * compilation, so nothing finds it. */
        pcre2_code_free(entry->code);
        entry->code = NULL;
        return NULL;
    }
    entry->match_data = pcre2_match_data_create(1, NULL);
    entry->pattern = malloc(pattern->u.string.len + 1);
    if (entry->match_data == NULL || entry->pattern == NULL) {
        error_memory(ev, err);
        return NULL;
    }
    memcpy(entry->pattern, pattern->u.string.data, pattern->u.string.len);
    entry->pattern_len = pattern->u.string.len;
    entry->site = ast;
    return entry;
}

/*
 * matches(): whether the pattern matches a substring, as the CEL language
 * definition states. PCRE2's DFA matcher runs it: it keeps every way the
 * pattern can go at once instead of backtracking, so its time grows with
 * the text's length times the pattern's, as RE2's does, and a pattern such
 * as "^(a|aa)+$" cannot take exponential time on text an image author
 * chose. NOTE: PCRE2 accepts more than RE2 (lookaround), so such a pattern
 * works here but not in other CEL implementations.
 */
static int
call_matches(struct eval *ev, const struct cel_ast *ast, struct cel_value *args,
             struct cel_value *out, struct pg_error **err)
{
    int workspace[CEL_REGEX_DFA_WORKSPACE];
    uint64_t cost;
    struct regex_entry *entry;
    const pcre2_code *code;
    pcre2_match_data *match_data;
    PCRE2_UCHAR message[256];
    int rc;

    if (args[0].type != CEL_TYPE_STRING || args[1].type != CEL_TYPE_STRING) {
        error_no_overload(err, ast, "matches", args, 2);
        return -1;
    }
    if (ev->match_context == NULL) {
        ev->match_context = pcre2_match_context_create(NULL);
        if (ev->match_context == NULL) {
            error_memory(ev, err);
            return -1;
        }
        pcre2_set_match_limit(ev->match_context, CEL_REGEX_MATCH_LIMIT);
    }
    if (ast->regex != NULL) {
        if (ev->literal_match_data == NULL)
            ev->literal_match_data = pcre2_match_data_create(1, NULL);
        if (ev->literal_match_data == NULL) {
            error_memory(ev, err);
            return -1;
        }
        code = ast->regex;
        match_data = ev->literal_match_data;
    } else {
        entry = find_regex(ev, ast, &args[1], err);
        if (entry == NULL)
            return -1;
        code = entry->code;
        match_data = entry->match_data;
    }
    /* The work is charged before it is done, so that a long text ends
     * the evaluation instead of stalling it. A pattern that could not be
     * anchored is run from every position, so it costs the square of the
     * text's length. */
    cost = (uint64_t)args[0].u.string.len * (args[1].u.string.len + 1);
    if (!cel_regex_one_pass(code))
        cost *= args[0].u.string.len;
    if (charge_steps(ev, ast, cost / 1024, err) < 0)
        return -1;
    /* The first match found decides the result, so the shortest. */
    rc = pcre2_dfa_match(code, (PCRE2_SPTR)args[0].u.string.data,
                         args[0].u.string.len, 0, PCRE2_DFA_SHORTEST,
                         match_data, ev->match_context, workspace,
                         sizeof(workspace) / sizeof(workspace[0]));
    if (rc < 0 && rc != PCRE2_ERROR_NOMATCH) {
        pcre2_get_error_message(rc, message, sizeof(message));
        eval_error(err, ast, "matching regular expression '%.*s' failed: %s",
                   quote_len(&args[1]), args[1].u.string.data,
                   (const char *)message);
        return -1;
    }
    *out = make_bool(rc >= 0);
    return 0;
}

/*
 * matchesGlob(text, glob) and text.matchesGlob(glob): whether the glob of
 * policy/glob.h matches all of text, case-sensitively. The match costs the
 * product of both lengths, which is what the steps count.
 */
static int
call_matches_glob(struct eval *ev, const struct cel_ast *ast,
                  struct cel_value *args, struct cel_value *out,
                  struct pg_error **err)
{
    char why[256];

    if (args[0].type != CEL_TYPE_STRING || args[1].type != CEL_TYPE_STRING) {
        error_no_overload(err, ast, "matchesGlob", args, 2);
        return -1;
    }
    if (!ast->glob_valid &&
        pg_glob_check(args[1].u.string.data, args[1].u.string.len, why,
                      sizeof(why)) < 0) {
        eval_error(err, ast, "invalid glob '%.*s': %s", quote_len(&args[1]),
                   args[1].u.string.data, why);
        return -1;
    }
    *out = make_bool(pg_glob_match_valid(
        args[1].u.string.data, args[1].u.string.len, args[0].u.string.data,
        args[0].u.string.len, false));
    return charge_steps(
        ev, ast, (uint64_t)args[0].u.string.len * args[1].u.string.len / 1024,
        err);
}

/* Looks up the version scheme that args[0] names. */
static int
version_scheme(const struct cel_ast *ast, const struct cel_value *name,
               enum pg_version_scheme *scheme, struct pg_error **err)
{
    char why[PG_VERSION_WHY_BYTES];

    if (pg_version_scheme_lookup(name->u.string.data, name->u.string.len,
                                 scheme, why, sizeof(why)) == 0)
        return 0;
    eval_error(err, ast, "%s", why);
    return -1;
}

/* compareVersions(scheme, a, b): -1, 0 or 1 as version a is below, equal
 * to or above version b in the scheme of policy/version.h. */
static int
call_compare_versions(struct eval *ev, const struct cel_ast *ast,
                      struct cel_value *args, struct cel_value *out,
                      struct pg_error **err)
{
    enum pg_version_scheme scheme;
    char why[PG_VERSION_WHY_BYTES];
    int result;

    if (args[0].type != CEL_TYPE_STRING || args[1].type != CEL_TYPE_STRING ||
        args[2].type != CEL_TYPE_STRING) {
        error_no_overload(err, ast, "compareVersions", args, 3);
        return -1;
    }
    if (version_scheme(ast, &args[0], &scheme, err) < 0)
        return -1;
    if (pg_version_compare(scheme, args[1].u.string.data, args[1].u.string.len,
                           args[2].u.string.data, args[2].u.string.len, &result,
                           why, sizeof(why)) < 0) {
        eval_error(err, ast, "%s", why);
        return -1;
    }
    out->type = CEL_TYPE_INT;
    out->u.int64 = result;
    return 0;
}

/* isVersion(scheme, text): whether text is a valid version in the
 * scheme. An unknown scheme is an error, not false. */
static int
call_is_version(struct eval *ev, const struct cel_ast *ast,
                struct cel_value *args, struct cel_value *out,
                struct pg_error **err)
{
    enum pg_version_scheme scheme;

    if (args[0].type != CEL_TYPE_STRING || args[1].type != CEL_TYPE_STRING) {
        error_no_overload(err, ast, "isVersion", args, 2);
        return -1;
    }
    if (version_scheme(ast, &args[0], &scheme, err) < 0)
        return -1;
    *out = make_bool(
        pg_version_valid(scheme, args[1].u.string.data, args[1].u.string.len));
    return 0;
}

typedef int (*cel_function)(struct eval *ev, const struct cel_ast *ast,
                            struct cel_value *args, struct cel_value *out,
                            struct pg_error **err);

/* The functions, each with its number of arguments counting the receiver,
 * and whether it is called as f(x), x.f() or both. */
static const struct {
    const char *name;
    size_t arguments;
    bool global;
    bool method;
    cel_function call;
} functions[] = {
    {"size", 1, true, true, call_size},
    {"int", 1, true, false, call_int},
    {"uint", 1, true, false, call_uint},
    {"double", 1, true, false, call_double},
    {"string", 1, true, false, call_string},
    {"contains", 2, false, true, call_substring},
    {"startsWith", 2, false, true, call_substring},
    {"endsWith", 2, false, true, call_substring},
    {"lowerAscii", 1, false, true, call_case},
    {"upperAscii", 1, false, true, call_case},
    {"matches", 2, true, true, call_matches},
    {"matchesGlob", 2, true, true, call_matches_glob},
    {"compareVersions", 3, true, false, call_compare_versions},
    {"isVersion", 2, true, false, call_is_version},
};

/* Arguments of the function with the most, counting the receiver. */
#define CEL_FUNCTION_ARGUMENTS_MAX 3

static int
eval_call(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
          struct pg_error **err)
{
    struct cel_value args[CEL_FUNCTION_ARGUMENTS_MAX];
    bool known = false;

    for (size_t i = 0; i < sizeof(functions) / sizeof(functions[0]); i++) {
        if (strcmp(functions[i].name, ast->name) != 0)
            continue;
        known = true;
        if (ast->child_count != functions[i].arguments ||
            !(ast->receiver ? functions[i].method : functions[i].global))
            continue;
        for (size_t j = 0; j < ast->child_count; j++)
            if (eval_node(ev, ast->children[j], &args[j], err) < 0)
                return -1;
        return functions[i].call(ev, ast, args, out, err);
    }
    if (known)
        eval_error(err, ast,
                   "no matching overload for '%s' with %zu argument%s%s",
                   ast->name, ast->child_count - ast->receiver,
                   ast->child_count - ast->receiver == 1 ? "" : "s",
                   ast->receiver ? " and a receiver" : "");
    else
        eval_error(err, ast, "undeclared reference to function '%s'",
                   ast->name);
    return -1;
}

/* ---- Macros. ---- */

static const char *const macro_functions[] = {
    [CEL_MACRO_NONE] = "?",        [CEL_MACRO_ALL] = "all",
    [CEL_MACRO_EXISTS] = "exists", [CEL_MACRO_EXISTS_ONE] = "exists_one",
    [CEL_MACRO_FILTER] = "filter", [CEL_MACRO_MAP] = "map",
};

/* Binds the iteration variable to each element of the range in turn. */
struct iteration {
    struct cel_value range; /* a list, or the list of a map's keys */
    size_t count;
};

static int
start_iteration(struct eval *ev, const struct cel_ast *ast,
                struct iteration *it, struct pg_error **err)
{
    struct cel_value range;

    if (eval_node(ev, ast->children[0], &range, err) < 0)
        return -1;
    if (range.type == CEL_TYPE_LIST) {
        it->range = range;
        it->count = list_size(&range);
        return 0;
    }
    if (range.type == CEL_TYPE_MAP) {
        struct cel_value *keys;

        it->count = map_size(&range);
        keys = new_list(ev, ast, it->count, &it->range, err);
        if (keys == NULL)
            return -1;
        map_keys(&range, keys);
        return 0;
    }
    error_no_overload(err, ast, macro_functions[ast->macro], &range, 1);
    return -1;
}

/* Evaluates child with the iteration variable bound to element i. */
static int
eval_with_element(struct eval *ev, const struct cel_ast *ast,
                  const struct iteration *it, size_t i,
                  const struct cel_ast *child, struct cel_value *out,
                  struct pg_error **err)
{
    struct binding *binding = &ev->bindings[ev->binding_count];
    int rc;

    if (charge_steps(ev, ast, 1, err) < 0)
        return -1;
    binding->name = ast->name;
    list_get(&it->range, i, &binding->value);
    ev->binding_count++;
    rc = eval_node(ev, child, out, err);
    ev->binding_count--;
    return rc;
}

/*
 * all() and exists(): the first element whose predicate is false (true)
 * decides, even after an error. Without one, the first error or non-bool
 * predicate is the result.
 */
static int
eval_all_exists(struct eval *ev, const struct cel_ast *ast,
                struct cel_value *out, struct pg_error **err)
{
    bool decisive = ast->macro == CEL_MACRO_EXISTS;
    struct pg_error *first = NULL;
    struct iteration it;

    if (start_iteration(ev, ast, &it, err) < 0)
        return -1;
    for (size_t i = 0; i < it.count; i++) {
        struct pg_error *error = NULL;
        struct cel_value result;

        if (eval_with_element(ev, ast, &it, i, ast->children[1], &result,
                              &error) < 0) {
            if (ev->fatal) {
                pg_error_free(first);
                first = error;
                break;
            }
        } else if (result.type != CEL_TYPE_BOOL) {
            error_no_overload(&error, ast, decisive ? "_||_" : "_&&_", &result,
                              1);
        } else if (result.u.boolean == decisive) {
            pg_error_free(first);
            *out = make_bool(decisive);
            return 0;
        }
        if (first == NULL)
            first = error;
        else
            pg_error_free(error);
    }
    if (first != NULL) {
        pg_error_set(err, first->status, first->code, "%s", first->message);
        pg_error_free(first);
        return -1;
    }
    *out = make_bool(!decisive);
    return 0;
}

/* exists_one(), filter() and map(): any error ends the macro. */
static int
eval_collect(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
             struct pg_error **err)
{
    bool transform = ast->macro == CEL_MACRO_MAP;
    const struct cel_ast *predicate =
        transform && ast->child_count == 2 ? NULL : ast->children[1];
    struct cel_value *items = NULL;
    struct iteration it;
    size_t count = 0;

    if (start_iteration(ev, ast, &it, err) < 0)
        return -1;
    if (ast->macro != CEL_MACRO_EXISTS_ONE) {
        items = new_list(ev, ast, it.count, out, err);
        if (items == NULL)
            return -1;
    }
    for (size_t i = 0; i < it.count; i++) {
        struct cel_value result;

        if (predicate != NULL) {
            if (eval_with_element(ev, ast, &it, i, predicate, &result, err) < 0)
                return -1;
            if (result.type != CEL_TYPE_BOOL) {
                error_no_overload(err, ast, macro_functions[ast->macro],
                                  &result, 1);
                return -1;
            }
            if (!result.u.boolean)
                continue;
        }
        if (transform) {
            if (eval_with_element(ev, ast, &it, i,
                                  ast->children[ast->child_count - 1],
                                  &items[count], err) < 0)
                return -1;
        } else if (items != NULL) {
            list_get(&it.range, i, &items[count]);
        }
        count++;
    }
    if (items == NULL) {
        *out = make_bool(count == 1);
        return 0;
    }
    /* The list was sized for every element, and filtering keeps fewer. */
    ((struct cel_list *)out->u.list)->count = count;
    return 0;
}

static int
eval_comprehension(struct eval *ev, const struct cel_ast *ast,
                   struct cel_value *out, struct pg_error **err)
{
    if (ast->macro == CEL_MACRO_ALL || ast->macro == CEL_MACRO_EXISTS)
        return eval_all_exists(ev, ast, out, err);
    return eval_collect(ev, ast, out, err);
}

/* ---- The walk. ---- */

static int
eval_node(struct eval *ev, const struct cel_ast *ast, struct cel_value *out,
          struct pg_error **err)
{
    memset(out, 0, sizeof(*out));
    if (charge_steps(ev, ast, 1, err) < 0)
        return -1;
    switch (ast->kind) {
    case CEL_AST_IDENT:
        return eval_ident(ev, ast, out, err);
    case CEL_AST_SELECT:
    case CEL_AST_HAS:
        return eval_select(ev, ast, out, err);
    case CEL_AST_INDEX:
        return eval_index(ev, ast, out, err);
    case CEL_AST_CALL:
        return eval_call(ev, ast, out, err);
    case CEL_AST_UNARY:
        return eval_unary(ev, ast, out, err);
    case CEL_AST_BINARY:
        return eval_binary(ev, ast, out, err);
    case CEL_AST_CONDITIONAL:
        return eval_conditional(ev, ast, out, err);
    case CEL_AST_LIST:
        return eval_list(ev, ast, out, err);
    case CEL_AST_MAP:
        return eval_map(ev, ast, out, err);
    case CEL_AST_COMPREHENSION:
        return eval_comprehension(ev, ast, out, err);
    default:
        return eval_literal(ast, out);
    }
}

/* ---- Conversion of the result to JSON. ---- */

static json_t *value_to_json(const struct cel_value *v,
                             const struct cel_ast *at, struct pg_error **err);

static json_t *
list_to_json(const struct cel_value *v, const struct cel_ast *at,
             struct pg_error **err)
{
    json_t *array = json_array();

    for (size_t i = 0; array != NULL && i < v->u.list->count; i++) {
        json_t *item = value_to_json(&v->u.list->items[i], at, err);

        if (item == NULL || json_array_append_new(array, item) < 0) {
            json_decref(array);
            return NULL;
        }
    }
    return array;
}

static json_t *
map_to_json(const struct cel_value *v, const struct cel_ast *at,
            struct pg_error **err)
{
    json_t *object = json_object();

    for (size_t i = 0; object != NULL && i < v->u.map->count; i++) {
        const struct cel_value *key = &v->u.map->keys[i];
        json_t *member;

        if (key->type != CEL_TYPE_STRING ||
            memchr(key->u.string.data, '\0', key->u.string.len) != NULL) {
            eval_error(err, at,
                       "the result is a map with a %s key, which JSON cannot "
                       "represent; use string keys",
                       key->type == CEL_TYPE_STRING ? "NUL-containing"
                                                    : type_names[key->type]);
            json_decref(object);
            return NULL;
        }
        member = value_to_json(&v->u.map->values[i], at, err);
        if (member == NULL ||
            json_object_set_new(object, key->u.string.data, member) < 0) {
            json_decref(object);
            return NULL;
        }
    }
    return object;
}

/*
 * Converts a value to a new JSON value. A uint above INT64_MAX, and NaN
 * and the infinities, have no JSON form and are errors. Returns NULL with
 * err set, or with err unset when memory is short.
 */
static json_t *
value_to_json(const struct cel_value *v, const struct cel_ast *at,
              struct pg_error **err)
{
    switch (v->type) {
    case CEL_TYPE_NULL:
        return json_null();
    case CEL_TYPE_BOOL:
        return json_boolean(v->u.boolean);
    case CEL_TYPE_INT:
        return json_integer(v->u.int64);
    case CEL_TYPE_UINT:
        if (v->u.uint64 > INT64_MAX) {
            eval_error(err, at,
                       "the result %" PRIu64 "u is larger than a JSON "
                       "integer can hold",
                       v->u.uint64);
            return NULL;
        }
        return json_integer((json_int_t)v->u.uint64);
    case CEL_TYPE_DOUBLE:
        if (!isfinite(v->u.float64)) {
            eval_error(err, at, "the result %g has no JSON form", v->u.float64);
            return NULL;
        }
        return json_real(v->u.float64);
    case CEL_TYPE_STRING:
        return json_stringn_nocheck(v->u.string.data, v->u.string.len);
    case CEL_TYPE_LIST:
        return v->from_json ? json_deep_copy(v->u.json)
                            : list_to_json(v, at, err);
    default:
        return v->from_json ? json_deep_copy(v->u.json)
                            : map_to_json(v, at, err);
    }
}

static void
release_eval(struct eval *ev)
{
    while (ev->blocks != NULL) {
        struct arena_block *next = ev->blocks->next;

        free(ev->blocks);
        ev->blocks = next;
    }
    for (size_t i = 0; i < ev->regex_count; i++) {
        free(ev->regexes[i].pattern);
        pcre2_match_data_free(ev->regexes[i].match_data);
        pcre2_code_free(ev->regexes[i].code);
    }
    pcre2_match_data_free(ev->literal_match_data);
    pcre2_match_context_free(ev->match_context);
}

json_t *
cel_eval(const struct cel_ast *ast, const json_t *input, struct pg_error **err)
{
    struct eval *ev;
    struct cel_value value;
    json_t *result = NULL;

    if (input != NULL && !json_is_object(input)) {
        eval_error(err, ast,
                   "the input of a CEL expression must be a JSON object");
        return NULL;
    }
    /* The evaluator state contains the bindings and the regex cache, too big
     * for the stack of a libevent callback. */
    ev = calloc(1, sizeof(*ev));
    if (ev == NULL) {
        pg_error_set(err, 503, PG_ERR_UNAVAILABLE,
                     "out of memory while evaluating a CEL expression; "
                     "retry later");
        return NULL;
    }
    ev->input = input;

    if (eval_node(ev, ast, &value, err) == 0) {
        result = value_to_json(&value, ast, err);
        if (result == NULL)
            error_memory(ev, err);
    }
    release_eval(ev);
    free(ev);
    return result;
}
