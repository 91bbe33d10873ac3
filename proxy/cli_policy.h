/*
 * The `pullgate policy` command: eval prints the value of one CEL
 * expression over a JSON object, lint lists every problem of a policy,
 * and test runs the test cases written beside a policy.
 */
#ifndef PG_CLI_POLICY_H
#define PG_CLI_POLICY_H

/* Exit statuses of the subcommands. */
#define CLI_POLICY_EXIT_OK 0
/* An expression that fails, a policy with an error, or a failed test. */
#define CLI_POLICY_EXIT_FAILED 1
/* A command-line error, or an invalid policy, input or test file. */
#define CLI_POLICY_EXIT_USAGE 2

/*
 * Runs `pullgate policy SUBCOMMAND ...` with argv[0] "policy" and returns
 * the exit status. Results go to standard output and messages to
 * standard error.
 */
int cli_policy_main(int argc, char **argv);

#endif
