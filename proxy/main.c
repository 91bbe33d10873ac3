/*
 * pullgate: a registry mirror that gates image pulls with a policy.
 *
 * main() dispatches the command. serve parses the command line, loads the
 * configuration and the policy, opens the cache, and runs the event loop
 * until SIGTERM or SIGINT; inspect and sbom live in proxy/cli_inspect.c,
 * and policy in proxy/cli_policy.c.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>

#include <curl/curl.h>
#include <event2/event.h>
#include <event2/thread.h>

#include "cache/cache.h"
#include "config/config.h"
#include "config/log.h"
#include "policy/policy.h"
#include "proxy/blobfetch.h"
#include "proxy/cli_inspect.h"
#include "proxy/cli_policy.h"
#include "proxy/gate.h"
#include "proxy/handlers.h"
#include "proxy/server.h"
#include "proxy/upstream.h"
#include "proxy/workers.h"

static const char usage[] =
    "Usage: pullgate serve [OPTIONS]\n"
    "       pullgate inspect [-c CONFIG] [--platform OS/ARCH] REF\n"
    "       pullgate sbom [-c CONFIG] [--platform OS/ARCH] REF\n"
    "                     --format spdx-json|cyclonedx-json\n"
    "       pullgate policy eval|lint|test ...\n"
    "       pullgate --help | --version\n"
    "\n"
    "serve runs an OCI registry mirror that forwards pulls to upstream\n"
    "registries, inspects each image, and serves only images its policy\n"
    "allows. inspect prints the image document of one image, and sbom its\n"
    "software bill of materials; see pullgate inspect --help. policy\n"
    "evaluates CEL expressions, checks policies and runs their tests; see\n"
    "pullgate policy --help.\n"
    "\n"
    "Options of serve (each overrides the configuration file):\n"
    "  -c, --config FILE      YAML configuration file (default: built-in\n"
    "                         defaults)\n"
    "      --listen ADDR:PORT address to listen on (default 127.0.0.1:5000;\n"
    "                         [::1]:PORT for IPv6)\n"
    "      --upstream NAME=URL\n"
    "                         upstream registry; repeat for several, the\n"
    "                         first is the default (replaces the file's list;\n"
    "                         default docker.io=https://registry-1.docker.io)\n"
    "      --cache-dir DIR    blob store and LMDB directory (default ./var)\n"
    "      --policy FILE      policy file (default: the built-in policy)\n"
    "  -h, --help             print this help and exit\n"
    "  -V, --version          print the version and exit\n";

/* Everything the daemon runs, freed in reverse order of creation. */
struct daemon {
    struct config *cfg;
    struct event_base *base;
    struct cache *cache;
    struct policy *policy;
    struct workers *workers;
    struct upstream_client *upstreams;
    struct blobfetch *fetches;
    struct gate *gate;
    struct handlers *handlers;
    struct server *server;
    struct event *sigterm;
    struct event *sigint;
    struct event *sighup;
    struct event *drain_timer; /* checks for open requests while stopping */
    uint64_t stop_deadline_ms; /* 0 until the first stop signal */
    bool reloading;            /* a policy reload is running on a worker */
    bool reload_again;         /* SIGHUP came during it: reload once more */
};

/* A policy reload: the policy is read on a worker thread, since reading
 * files and checking every expression must not hold up the loop. */
struct reload {
    struct daemon *d;
    struct policy *policy;
    struct pg_error *err;
};

/* How often a stopping daemon checks whether open requests have ended. */
#define DRAIN_CHECK_MS 100

static void
on_drain_check(evutil_socket_t fd, short what, void *arg)
{
    struct daemon *d = arg;
    struct timeval again = {.tv_usec = DRAIN_CHECK_MS * 1000};
    unsigned open = handlers_in_flight(d->handlers);

    if (open == 0 || pg_monotonic_ms() >= d->stop_deadline_ms) {
        if (open > 0)
            pg_log(PG_LOG_WARN, "shutdown_grace_expired",
                   "in_flight=%u grace_s=%u", open,
                   d->cfg->shutdown_grace_seconds);
        event_base_loopexit(d->base, NULL);
        return;
    }
    evtimer_add(d->drain_timer, &again);
}

/*
 * The first SIGTERM or SIGINT stops accepting connections and lets open
 * requests finish for up to shutdown_grace_seconds; a second one stops at
 * once.
 */
static void
on_stop_signal(evutil_socket_t signal_number, short what, void *arg)
{
    struct daemon *d = arg;

    if (d->stop_deadline_ms != 0) {
        pg_log(PG_LOG_WARN, "stopping_now", "signal=%d in_flight=%u",
               (int)signal_number, handlers_in_flight(d->handlers));
        event_base_loopexit(d->base, NULL);
        return;
    }
    d->stop_deadline_ms =
        pg_monotonic_ms() + (uint64_t)d->cfg->shutdown_grace_seconds * 1000;
    pg_log(PG_LOG_INFO, "stopping", "signal=%d in_flight=%u grace_s=%u",
           (int)signal_number, handlers_in_flight(d->handlers),
           d->cfg->shutdown_grace_seconds);
    server_stop_accepting(d->server);
    on_drain_check(-1, 0, d);
}

/* Routes libevent's own diagnostics into the one log format. */
static void
on_libevent_log(int severity, const char *message)
{
    char quoted[1024];
    enum pg_log_level level = severity == EVENT_LOG_DEBUG  ? PG_LOG_DEBUG
                              : severity == EVENT_LOG_MSG  ? PG_LOG_INFO
                              : severity == EVENT_LOG_WARN ? PG_LOG_WARN
                                                           : PG_LOG_ERROR;

    pg_log(level, "libevent", "message=%s",
           pg_log_quote(quoted, sizeof(quoted), message));
}

/* Logs each warning of a loaded policy, such as an expired exception. */
static void
log_policy_warnings(const struct policy *policy)
{
    char message[PG_ERROR_MESSAGE_MAX + 64];
    const json_t *warning;
    size_t i;

    json_array_foreach(policy_warnings(policy), i, warning)
    {
        pg_log(PG_LOG_WARN, "policy_warning",
               "file=\"%s\" line=%lld message=%s",
               json_string_value(json_object_get(warning, "file")),
               (long long)json_integer_value(json_object_get(warning, "line")),
               pg_log_quote(
                   message, sizeof(message),
                   json_string_value(json_object_get(warning, "message"))));
    }
}

static void
reload_run(void *arg)
{
    struct reload *reload = arg;

    reload->policy = policy_load(reload->d->cfg->policy_path, &reload->err);
}

static void start_reload(struct daemon *d);

/*
 * Puts the new policy in force, or keeps the old one when the new one is
 * invalid. Images inspected before are evaluated again from their stored
 * documents on their next request, since verdicts are keyed by policy.
 */
static void
reload_done(void *arg)
{
    struct reload *reload = arg;
    struct daemon *d = reload->d;
    char message[PG_ERROR_MESSAGE_MAX + 64];
    const char *old_digest = policy_digest(d->policy);

    d->reloading = false;
    if (d->stop_deadline_ms != 0) {
        /* Stopping: the new policy would serve nothing. */
    } else if (reload->policy == NULL) {
        pg_log(PG_LOG_ERROR, "policy_reload_failed",
               "policy=\"%s\" kept_digest=%s error=%s",
               policy_source(d->policy), old_digest,
               pg_log_quote(message, sizeof(message), reload->err->message));
    } else if (strcmp(policy_digest(reload->policy), old_digest) == 0) {
        pg_log(PG_LOG_INFO, "policy_unchanged", "policy=\"%s\" digest=%s",
               policy_source(reload->policy), old_digest);
    } else if (gate_set_policy(d->gate, reload->policy, &reload->err) < 0) {
        pg_log(PG_LOG_ERROR, "policy_reload_failed",
               "policy=\"%s\" kept_digest=%s error=%s",
               policy_source(d->policy), old_digest,
               pg_log_quote(message, sizeof(message), reload->err->message));
    } else {
        pg_log(PG_LOG_INFO, "policy_reloaded",
               "policy=\"%s\" old_digest=%s digest=%s",
               policy_source(reload->policy), old_digest,
               policy_digest(reload->policy));
        log_policy_warnings(reload->policy);
        policy_free(d->policy);
        d->policy = reload->policy;
        reload->policy = NULL;
    }
    policy_free(reload->policy);
    pg_error_free(reload->err);
    free(reload);
    if (d->reload_again && d->stop_deadline_ms == 0) {
        d->reload_again = false;
        start_reload(d);
    }
}

static void
start_reload(struct daemon *d)
{
    struct reload *reload = calloc(1, sizeof(*reload));
    struct pg_error *err = NULL;

    if (reload == NULL) {
        pg_log(PG_LOG_ERROR, "policy_reload_failed",
               "error=\"out of memory; send SIGHUP again\"");
        return;
    }
    reload->d = d;
    if (workers_submit(d->workers, reload_run, reload_done, reload, &err) < 0) {
        pg_log(PG_LOG_ERROR, "policy_reload_failed", "error=\"%s\"",
               err->message);
        pg_error_free(err);
        free(reload);
        return;
    }
    d->reloading = true;
}

/* SIGHUP reloads the policy. Signals that arrive during a reload are
 * folded into one more reload after it, so the last edit always counts. */
static void
on_sighup(evutil_socket_t signal_number, short what, void *arg)
{
    struct daemon *d = arg;

    if (d->stop_deadline_ms != 0)
        return;
    if (d->reloading) {
        if (!d->reload_again)
            pg_log(PG_LOG_INFO, "policy_reload_queued",
                   "reason=\"a reload is running\"");
        d->reload_again = true;
        return;
    }
    pg_log(PG_LOG_INFO, "policy_reload_started", "policy=\"%s\"",
           d->cfg->policy_path != NULL ? d->cfg->policy_path
                                       : "built-in default policy");
    start_reload(d);
}

static struct config *
load_config(int argc, char **argv, struct pg_error **err)
{
    static const struct option options[] = {
        {"config", required_argument, NULL, 'c'},
        {"listen", required_argument, NULL, 'l'},
        {"upstream", required_argument, NULL, 'u'},
        {"cache-dir", required_argument, NULL, 'd'},
        {"policy", required_argument, NULL, 'p'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const char *file = NULL;
    struct config *cfg;
    int opt;

    /* First pass: find the file, which the other options override. */
    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        if (opt == 'c') {
            file = optarg;
        } else if (opt == 'h') {
            fputs(usage, stdout);
            exit(0);
        } else if (opt == '?') {
            pg_error_set(err, 2, PG_ERR_CONFIG,
                         "invalid command line; see pullgate --help");
            return NULL;
        }
    }
    if (optind < argc) {
        pg_error_set(err, 2, PG_ERR_CONFIG,
                     "unexpected argument \"%s\"; see pullgate --help",
                     argv[optind]);
        return NULL;
    }

    cfg = file != NULL ? config_load(file, err) : config_defaults(err);
    if (cfg == NULL)
        return NULL;

    optind = 1;
    while ((opt = getopt_long(argc, argv, "c:h", options, NULL)) != -1) {
        const char *name = opt == 'l'   ? "listen"
                           : opt == 'u' ? "upstream"
                           : opt == 'd' ? "cache-dir"
                           : opt == 'p' ? "policy"
                                        : NULL;

        if (name != NULL && config_set_option(cfg, name, optarg, err) < 0) {
            config_free(cfg);
            return NULL;
        }
    }
    if (config_validate(cfg, err) < 0) {
        config_free(cfg);
        return NULL;
    }
    return cfg;
}

static int
add_signal(struct daemon *d, struct event **slot, int signal_number,
           event_callback_fn fn)
{
    *slot = evsignal_new(d->base, signal_number, fn, d);
    return *slot != NULL && evsignal_add(*slot, NULL) == 0 ? 0 : -1;
}

static int
daemon_start(struct daemon *d, struct pg_error **err)
{
    struct handlers_deps deps;

    d->base = event_base_new();
    if (d->base == NULL) {
        pg_error_set(err, 500, PG_ERR_INTERNAL, "cannot create event loop");
        return -1;
    }
    d->cache = cache_open(d->cfg->cache_dir, d->cfg->lmdb_map_size, err);
    if (d->cache == NULL)
        return -1;
    d->policy = policy_load(d->cfg->policy_path, err);
    if (d->policy == NULL)
        return -1;
    d->workers = workers_new(d->base, d->cfg->workers, err);
    if (d->workers == NULL)
        return -1;
    d->upstreams = upstream_client_new(d->base, d->cfg, err);
    if (d->upstreams == NULL)
        return -1;
    d->fetches =
        blobfetch_new(d->base, d->upstreams, d->workers, d->cache, err);
    if (d->fetches == NULL)
        return -1;
    d->gate = gate_new(d->base, d->cfg, d->upstreams, d->fetches, d->workers,
                       d->cache, d->policy, err);
    if (d->gate == NULL)
        return -1;

    deps = (struct handlers_deps){
        .cfg = d->cfg,
        .cache = d->cache,
        .gate = d->gate,
        .fetches = d->fetches,
        .upstreams = d->upstreams,
    };
    d->handlers = handlers_new(&deps, err);
    if (d->handlers == NULL)
        return -1;
    d->server = server_new(d->base, d->cfg, d->handlers, err);
    if (d->server == NULL)
        return -1;

    d->drain_timer = evtimer_new(d->base, on_drain_check, d);
    if (d->drain_timer == NULL ||
        add_signal(d, &d->sigterm, SIGTERM, on_stop_signal) < 0 ||
        add_signal(d, &d->sigint, SIGINT, on_stop_signal) < 0 ||
        add_signal(d, &d->sighup, SIGHUP, on_sighup) < 0) {
        pg_error_set(err, 500, PG_ERR_INTERNAL, "cannot install signal events");
        return -1;
    }
    return 0;
}

/*
 * Stops in dependency order: no new requests, then the workers (whose
 * pending results still reach the gate), then what they used.
 */
static void
daemon_stop(struct daemon *d)
{
    server_free(d->server);
    workers_free(d->workers);
    gate_free(d->gate);
    handlers_free(d->handlers);
    blobfetch_free(d->fetches);
    upstream_client_free(d->upstreams);
    policy_free(d->policy);
    cache_close(d->cache);
    if (d->sigterm != NULL)
        event_free(d->sigterm);
    if (d->sigint != NULL)
        event_free(d->sigint);
    if (d->sighup != NULL)
        event_free(d->sighup);
    if (d->drain_timer != NULL)
        event_free(d->drain_timer);
    if (d->base != NULL)
        event_base_free(d->base);
    config_free(d->cfg);
}

static void
log_start(const struct daemon *d)
{
    char upstreams[1024] = "";
    size_t used = 0;

    for (size_t i = 0; i < d->cfg->n_upstreams; i++) {
        int n = snprintf(upstreams + used, sizeof(upstreams) - used, "%s%s=%s",
                         i > 0 ? "," : "", d->cfg->upstreams[i].name,
                         d->cfg->upstreams[i].url);
        if (n < 0 || (size_t)n >= sizeof(upstreams) - used)
            break;
        used += (size_t)n;
    }
    pg_log(PG_LOG_INFO, "started",
           "version=%s listen=%s:%u tls=%s upstreams=%s cache_dir=%s "
           "policy=\"%s\" policy_digest=%s workers=%u config=\"%s\"",
           PACKAGE_VERSION, d->cfg->listen_host, d->cfg->listen_port,
           d->cfg->tls_cert_file != NULL ? "on" : "off", upstreams,
           d->cfg->cache_dir, policy_source(d->policy),
           policy_digest(d->policy), workers_count(d->workers), d->cfg->source);
    log_policy_warnings(d->policy);
}

/*
 * Raises the soft limit on open files to the hard limit. Every client
 * connection, upstream transfer, blob being sent and layer read waiting
 * on the reader pool holds a descriptor, so two images of 512 layers
 * alone can pass the usual soft limit of 1024 while the hard limit
 * allows far more. A failure only leaves the limit as it was.
 */
static void
raise_file_limit(void)
{
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) < 0 ||
        limit.rlim_cur >= limit.rlim_max)
        return;
    limit.rlim_cur = limit.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &limit) < 0)
        pg_log(PG_LOG_WARN, "file_limit_unchanged", "errno=%d", errno);
}

static int
serve(int argc, char **argv)
{
    struct daemon d = {0};
    struct pg_error *err = NULL;
    enum pg_log_level level;
    int status = 1;

    d.cfg = load_config(argc, argv, &err);
    if (d.cfg == NULL)
        goto out;
    if (pg_log_parse_level(d.cfg->log_level, &level) == 0)
        pg_log_set_level(level);

    raise_file_limit();
    if (daemon_start(&d, &err) < 0)
        goto out;
    log_start(&d);
    event_base_dispatch(d.base);
    pg_log(PG_LOG_INFO, "stopped", "in_flight=%u",
           handlers_in_flight(d.handlers));
    status = 0;

out:
    if (err != NULL)
        fprintf(stderr, "pullgate: %s\n", err->message);
    pg_error_free(err);
    daemon_stop(&d);
    return status;
}

int
main(int argc, char **argv)
{
    int status;

    if (argc >= 2 &&
        (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "-V") == 0)) {
        printf("pullgate %s\n", PACKAGE_VERSION);
        return 0;
    }
    if (argc < 2 || strcmp(argv[1], "--help") == 0 ||
        strcmp(argv[1], "-h") == 0) {
        fputs(usage, argc < 2 ? stderr : stdout);
        return argc < 2 ? 2 : 0;
    }
    if (strcmp(argv[1], "policy") == 0)
        return cli_policy_main(argc - 1, argv + 1);
    if (strcmp(argv[1], "serve") != 0 && strcmp(argv[1], "inspect") != 0 &&
        strcmp(argv[1], "sbom") != 0) {
        fprintf(stderr,
                "pullgate: unknown command \"%s\"; see pullgate "
                "--help\n",
                argv[1]);
        return 2;
    }

    signal(SIGPIPE, SIG_IGN);
    event_set_log_callback(on_libevent_log);
    if (evthread_use_pthreads() != 0 ||
        curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
        fprintf(stderr, "pullgate: cannot initialise libevent threads or "
                        "libcurl\n");
        return 1;
    }
    if (strcmp(argv[1], "inspect") == 0)
        status = cli_inspect_main(argc - 1, argv + 1, CLI_OUTPUT_DOCUMENT);
    else if (strcmp(argv[1], "sbom") == 0)
        status = cli_inspect_main(argc - 1, argv + 1, CLI_OUTPUT_SBOM);
    else
        status = serve(argc - 1, argv + 1);
    curl_global_cleanup();
    libevent_global_shutdown();
    return status;
}
