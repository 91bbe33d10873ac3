# Turns a YAML file into C source that defines policy_default_yaml (the
# file's bytes as a string) and policy_default_yaml_len (its length).
#
# Usage: awk -f policy/embed.awk config/policy/default.yaml > default_policy.c
#
# Characters are escaped one at a time instead of with gsub, because awk
# implementations disagree about backslashes in gsub replacements. Every
# '?' is escaped so that no "??x" sequence turns into a trigraph, which
# -std=c11 enables.

BEGIN {
    print "/* Generated from config/policy/default.yaml by policy/embed.awk;"
    print " * edit the YAML file instead. */"
    print "#include \"policy/default_policy.h\""
    print ""
    print "const char policy_default_yaml[] ="
    lines = 0
}

{
    out = ""
    n = length($0)
    for (i = 1; i <= n; i++) {
        c = substr($0, i, 1)
        if (c == "\\")
            out = out "\\\\"
        else if (c == "\"")
            out = out "\\\""
        else if (c == "?")
            out = out "\\?"
        else if (c == "\t")
            out = out "\\t"
        else if (c == "\r")
            out = out "\\r"
        else
            out = out c
    }
    print "    \"" out "\\n\""
    lines++
}

END {
    if (lines == 0)
        print "    \"\""
    print "    ;"
    print "const size_t policy_default_yaml_len ="
    print "    sizeof(policy_default_yaml) - 1;"
}
