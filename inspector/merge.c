/*
 * The merged file system of an image and the findings that count in it.
 *
 * The merged file system is what a runtime unpacks: each layer applied
 * over the ones before it as the OCI layer changeset rules say. An entry
 * is present unless something applied after it removes it: a later entry
 * at its path, a later non-directory at one of its parent directories, a
 * whiteout in a later layer naming its path or a parent directory, or an
 * opaque whiteout in a later layer inside one of its parent directories.
 * Whiteouts are never present. "files" keeps the entries that are not
 * present, because their bytes are still in the image.
 *
 * An os-release, package or license finding counts only when its "path"
 * is present and the visible entry there comes from the finding's own
 * layer, so packages of a dpkg status file that a later layer replaced
 * or deleted are gone. Secrets and notes are all kept.
 *
 * "setuid_files" lists present regular files and hard links with the
 * setuid or setgid bit. "world_writable" lists present entries writable
 * by others, except symlinks (whose mode means nothing) and directories
 * with the sticky bit (such as /tmp). A path has at most one present
 * entry, so neither list repeats a path.
 */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "config/error.h"
#include "inspector/catalog.h"
#include "inspector/document_internal.h"
#include "inspector/inspector.h"

struct file_summary {
    json_int_t files;
    json_int_t present_files;
    json_t *setuid_files;   /* visible paths only */
    json_t *world_writable; /* visible paths only */
};

/* ---- the merged file system ---- */

/* A later entry at this path replaces an earlier entry at the same path. */
#define MERGE_HIDES_PATH 1u
/* Everything under this path is hidden from earlier entries. */
#define MERGE_HIDES_BELOW 2u

#define MERGE_NO_PARENT SIZE_MAX

/* A path that an entry has or that a whiteout names. */
struct merge_key {
    const char *path; /* shared with the layer result */
    size_t len;
    unsigned flags;    /* MERGE_HIDES_*, from the entries applied after */
    int present_layer; /* layer of the visible entry at path, or -1 */
    /* Index in keys of the longest key that is a parent directory of
     * path, or MERGE_NO_PARENT. */
    size_t parent;
};

/*
 * The image's file system with every layer applied: which entries are
 * visible, and for each path the layer its visible entry comes from. keys
 * is sorted by compare_paths and searched by bisection, so no input can
 * make a look-up slower than O(log n), as colliding keys can in a hash
 * table.
 */
struct merged_fs {
    struct merge_key *keys;
    size_t n_keys;
    bool *present; /* one per entry, in the order of "files" */
    size_t n_entries;
};

static const char *
entry_type(const json_t *entry)
{
    return json_string_value(json_object_get(entry, "type"));
}

static bool
is_whiteout_type(const char *type)
{
    return strcmp(type, "whiteout") == 0 ||
           strcmp(type, "opaque_whiteout") == 0;
}

static int
compare_bytes(const char *a, size_t a_len, const char *b, size_t b_len)
{
    int rc = memcmp(a, b, a_len < b_len ? a_len : b_len);

    if (rc != 0)
        return rc;
    return (a_len > b_len) - (a_len < b_len);
}

/* Returns the rank of a path byte in compare_paths: '/' below all. */
static int
path_byte_rank(char c)
{
    return c == '/' ? 0 : (unsigned char)c + 1;
}

/*
 * Compares two paths bytewise, except that '/' sorts before every other
 * byte. Then the paths under a directory follow it with no other path
 * between them ("a", "a/b", "a-b" rather than "a", "a-b", "a/b"), which
 * lets merge_link_parents find each key's parent in one pass.
 */
static int
compare_paths(const char *a, size_t a_len, const char *b, size_t b_len)
{
    size_t n = a_len < b_len ? a_len : b_len;
    size_t i = 0;

    /* memcmp passes long shared prefixes, such as a deep directory's,
     * faster than a loop over bytes. */
    while (i < n) {
        size_t step = n - i < 64 ? n - i : 64;

        if (memcmp(a + i, b + i, step) != 0)
            break;
        i += step;
    }
    while (i < n && a[i] == b[i])
        i++;
    if (i < n)
        return path_byte_rank(a[i]) - path_byte_rank(b[i]);
    return (a_len > b_len) - (a_len < b_len);
}

static int
compare_merge_keys(const void *a, const void *b)
{
    const struct merge_key *key_a = a;
    const struct merge_key *key_b = b;

    return compare_paths(key_a->path, key_a->len, key_b->path, key_b->len);
}

static struct merge_key *
merge_find(const struct merged_fs *fs, const char *path, size_t len)
{
    size_t low = 0;
    size_t high = fs->n_keys;

    while (low < high) {
        size_t mid = low + (high - low) / 2;
        int rc =
            compare_paths(path, len, fs->keys[mid].path, fs->keys[mid].len);

        if (rc == 0)
            return &fs->keys[mid];
        if (rc < 0)
            high = mid;
        else
            low = mid + 1;
    }
    return NULL;
}

static struct merge_key *
merge_find_json(const struct merged_fs *fs, const json_t *path)
{
    return merge_find(fs, json_string_value(path), json_string_length(path));
}

/*
 * Returns true when the entry at key is hidden by what was applied after
 * it: an entry at the same path, or a removal of the root "." or of a
 * directory above it. The parent links lead to every directory above the
 * path that has a key, so each step is O(1) however long the path is.
 */
static bool
merge_hidden(const struct merged_fs *fs, const struct merge_key *key)
{
    const struct merge_key *root;

    if ((key->flags & MERGE_HIDES_PATH) != 0)
        return true;
    if (!(key->len == 1 && key->path[0] == '.')) {
        root = merge_find(fs, ".", 1);
        if (root != NULL && (root->flags & MERGE_HIDES_BELOW) != 0)
            return true;
    }
    for (size_t i = key->parent; i != MERGE_NO_PARENT; i = fs->keys[i].parent) {
        if ((fs->keys[i].flags & MERGE_HIDES_BELOW) != 0)
            return true;
    }
    return false;
}

static void
merge_add_key(struct merged_fs *fs, const json_t *path)
{
    struct merge_key *key = &fs->keys[fs->n_keys++];

    key->path = json_string_value(path);
    key->len = json_string_length(path);
    key->flags = 0;
    key->present_layer = -1;
    key->parent = MERGE_NO_PARENT;
}

/* Returns true when the path of parent, followed by '/', starts the path
 * of key. */
static bool
merge_is_parent(const struct merge_key *parent, const struct merge_key *key)
{
    return parent->len < key->len && key->path[parent->len] == '/' &&
           memcmp(key->path, parent->path, parent->len) == 0;
}

/*
 * Links each key of the sorted, unique keys to its parent. In the order of
 * compare_paths, the parent of a key is the previous key or one of that
 * key's parents, and a key that is not the parent of the next one is no
 * later key's parent either. So the walk from the previous key up its
 * parent links visits each key at most once over the whole pass: O(n)
 * comparisons of at most one path each.
 */
static void
merge_link_parents(struct merged_fs *fs)
{
    for (size_t i = 1; i < fs->n_keys; i++) {
        size_t candidate = i - 1;

        while (candidate != MERGE_NO_PARENT &&
               !merge_is_parent(&fs->keys[candidate], &fs->keys[i]))
            candidate = fs->keys[candidate].parent;
        fs->keys[i].parent = candidate;
    }
}

/*
 * Fills fs->keys with every entry's path and every whiteout's target,
 * sorted, each once. The caller checked the entries. Returns 0, or -1
 * when memory is short.
 */
static int
merge_collect_keys(struct merged_fs *fs, json_t *const *results,
                   size_t n_layers, struct pg_error **err)
{
    size_t unique = 0;

    /* At most two keys per entry: its path and a whiteout's target. */
    if (fs->n_entries > SIZE_MAX / 2 / sizeof(*fs->keys) ||
        (fs->keys = calloc(2 * fs->n_entries + 1, sizeof(*fs->keys))) == NULL) {
        set_memory_error(err);
        return -1;
    }
    for (size_t i = 0; i < n_layers; i++) {
        const json_t *entry;
        size_t j;

        json_array_foreach(json_object_get(results[i], "files"), j, entry)
        {
            merge_add_key(fs, json_object_get(entry, "path"));
            if (is_whiteout_type(entry_type(entry)))
                merge_add_key(fs, json_object_get(entry, "target"));
        }
    }

    qsort(fs->keys, fs->n_keys, sizeof(*fs->keys), compare_merge_keys);
    for (size_t i = 0; i < fs->n_keys; i++) {
        if (unique == 0 ||
            compare_merge_keys(&fs->keys[unique - 1], &fs->keys[i]) != 0)
            fs->keys[unique++] = fs->keys[i];
    }
    fs->n_keys = unique;
    merge_link_parents(fs);
    return 0;
}

/*
 * Applies one layer's entries over what the layers above it already
 * decided, walking from the last entry to the first: an entry is visible
 * unless something applied after it hides it. first is the index in
 * fs->present of the layer's first entry.
 */
static void
merge_layer(struct merged_fs *fs, const json_t *entries, size_t first,
            int layer)
{
    size_t n = json_array_size(entries);

    /* A later entry of the same layer replaces an earlier one at its
     * path, as unpacking the tar stream in order does. */
    for (size_t j = n; j-- > 0;) {
        const json_t *entry = json_array_get(entries, j);
        const json_t *path = json_object_get(entry, "path");
        const char *type = entry_type(entry);
        struct merge_key *key = merge_find_json(fs, path);

        if (is_whiteout_type(type) || key == NULL)
            continue;
        fs->present[first + j] = !merge_hidden(fs, key);
        if (fs->present[first + j])
            key->present_layer = layer;
        key->flags |= MERGE_HIDES_PATH;
        /* A non-directory replacing a directory removes its contents. */
        if (strcmp(type, "dir") != 0)
            key->flags |= MERGE_HIDES_BELOW;
    }

    /* Whiteouts apply to the lower layers only, so they take effect once
     * the whole layer has been applied. */
    for (size_t j = 0; j < n; j++) {
        const json_t *entry = json_array_get(entries, j);
        const char *type = entry_type(entry);
        struct merge_key *key;

        if (!is_whiteout_type(type))
            continue;
        key = merge_find_json(fs, json_object_get(entry, "target"));
        if (key == NULL)
            continue;
        key->flags |= MERGE_HIDES_BELOW;
        if (strcmp(type, "whiteout") == 0)
            key->flags |= MERGE_HIDES_PATH;
    }
}

/*
 * Computes the merged file system of the layer results, whose entries the
 * caller checked, as the OCI image spec's layer changeset rules define
 * it: ".wh.NAME" deletes NAME and everything under it from the lower
 * layers, ".wh..wh..opq" hides every lower entry under its directory, and
 * a later entry replaces an earlier one at its path. The layers are
 * walked from the top down, so each entry is looked at once: O(n log n)
 * for n entries, plus one step for each listed directory above an entry.
 * Returns 0, or -1 when memory is short.
 */
static int
merge_layers(struct merged_fs *fs, json_t *const *results, size_t n_layers,
             struct pg_error **err)
{
    size_t first = 0;

    for (size_t i = 0; i < n_layers; i++)
        fs->n_entries += json_array_size(json_object_get(results[i], "files"));
    fs->present = calloc(fs->n_entries + 1, sizeof(*fs->present));
    if (fs->present == NULL) {
        set_memory_error(err);
        return -1;
    }
    if (merge_collect_keys(fs, results, n_layers, err) < 0)
        return -1;

    first = fs->n_entries;
    for (size_t i = n_layers; i-- > 0;) {
        const json_t *entries = json_object_get(results[i], "files");

        first -= json_array_size(entries);
        merge_layer(fs, entries, first, (int)i);
    }
    return 0;
}

/* Returns true when the visible entry at path comes from layer. */
static bool
merge_visible_from(const struct merged_fs *fs, const json_t *path, size_t layer)
{
    const struct merge_key *key = merge_find_json(fs, path);

    return key != NULL && key->present_layer == (int)layer;
}

static void
merged_fs_release(struct merged_fs *fs)
{
    free(fs->present);
    free(fs->keys);
}

/* ---- layers, files and the summary ---- */

/* Counts one file and adds a visible one to the summary lists it belongs
 * in. A path has at most one visible entry, so no list repeats a path. */
static int
summary_add(struct file_summary *summary, const json_t *file, bool present,
            struct pg_error **err)
{
    const char *type = entry_type(file);
    json_int_t mode = json_integer_value(json_object_get(file, "mode"));
    json_t *path = json_object_get(file, "path");
    bool regular = strcmp(type, "file") == 0 || strcmp(type, "hardlink") == 0;
    bool sticky_dir = strcmp(type, "dir") == 0 && (mode & 01000) != 0;
    bool no_mode = strcmp(type, "symlink") == 0 || is_whiteout_type(type);

    summary->files++;
    if (!present)
        return 0;
    summary->present_files++;
    if (regular && (mode & 06000) != 0 &&
        append_new(summary->setuid_files, json_incref(path), err) < 0)
        return -1;
    if ((mode & 0002) != 0 && !sticky_dir && !no_mode &&
        append_new(summary->world_writable, json_incref(path), err) < 0)
        return -1;
    return 0;
}

/* Returns true when a layer result's entry has every field the document
 * copies, with the right types. */
static bool
file_entry_valid(const json_t *entry)
{
    static const char *const integers[] = {"mode", "size", "uid", "gid", NULL};

    if (!json_is_string(json_object_get(entry, "path")) ||
        !json_is_string(json_object_get(entry, "type")))
        return false;
    for (size_t i = 0; integers[i] != NULL; i++) {
        if (!json_is_integer(json_object_get(entry, integers[i])))
            return false;
    }
    return !is_whiteout_type(entry_type(entry)) ||
           json_is_string(json_object_get(entry, "target"));
}

/* Checks every entry of one layer result before the layers are merged. */
static int
check_layer_files(const json_t *result, size_t layer_index,
                  struct pg_error **err)
{
    const json_t *entry;
    size_t i;

    json_array_foreach(json_object_get(result, "files"), i, entry)
    {
        if (!file_entry_valid(entry)) {
            pg_error_set(err, 500, PG_ERR_INTERNAL,
                         "entry %zu of the result for layer %zu lacks a "
                         "field; results must come from "
                         "inspector_list_layer",
                         i, layer_index);
            return -1;
        }
    }
    return 0;
}

/*
 * Returns the document form of one layer result entry, or NULL. The
 * strings and integers are shared with the caller's result, not copied:
 * nothing changes them, and jansson built with JSON_HAVE_ATOMIC_BUILTINS
 * counts references safely across threads.
 */
static json_t *
document_file(const json_t *entry, size_t layer_index, bool present)
{
    json_t *link = json_object_get(entry, "link");
    json_t *target = json_object_get(entry, "target");
    json_t *raw_path = json_object_get(entry, "raw_path");
    json_t *file;

    file = json_pack(
        "{s:O, s:I, s:O, s:O, s:O, s:O, s:O, s:b}", "path",
        json_object_get(entry, "path"), "layer", (json_int_t)layer_index,
        "type", json_object_get(entry, "type"), "mode",
        json_object_get(entry, "mode"), "size", json_object_get(entry, "size"),
        "uid", json_object_get(entry, "uid"), "gid",
        json_object_get(entry, "gid"), "present", present);
    if (file == NULL)
        return NULL;
    if ((link != NULL && json_object_set(file, "link", link) < 0) ||
        (target != NULL && json_object_set(file, "target", target) < 0) ||
        (raw_path != NULL && json_object_set(file, "raw_path", raw_path) < 0)) {
        json_decref(file);
        return NULL;
    }
    return file;
}

/* Appends the entries of every layer result to files and the summary. */
static int
add_files(json_t *files, struct file_summary *summary,
          const struct merged_fs *fs, json_t *const *results, size_t n_layers,
          struct pg_error **err)
{
    size_t index = 0;

    for (size_t layer = 0; layer < n_layers; layer++) {
        const json_t *entry;
        size_t i;

        json_array_foreach(json_object_get(results[layer], "files"), i, entry)
        {
            bool present = fs->present[index++];

            if (append_new(files, document_file(entry, layer, present), err) <
                    0 ||
                summary_add(summary, entry, present, err) < 0)
                return -1;
        }
    }
    return 0;
}

/* Returns the "layers" entry of layer index, checking that the result
 * belongs to the manifest's descriptor at that index. */
static json_t *
document_layer(const json_t *descriptor, const json_t *result, size_t index,
               struct pg_error **err)
{
    const char *expected =
        json_string_value(json_object_get(descriptor, "digest"));
    const char *actual = json_string_value(json_object_get(result, "digest"));
    json_t *layer;

    if (expected == NULL || actual == NULL || strcmp(expected, actual) != 0 ||
        !json_is_array(json_object_get(result, "files"))) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "layer result %zu is for %s, but the manifest lists %s "
                     "at that index",
                     index, actual != NULL ? actual : "(no digest)",
                     expected != NULL ? expected : "(no digest)");
        return NULL;
    }

    layer = descriptor_summary(descriptor);
    if (layer == NULL ||
        json_object_set_new(layer, "index", json_integer((json_int_t)index)) <
            0 ||
        json_object_set_new(layer, "entries",
                            json_integer(json_integer_value(
                                json_object_get(result, "entries")))) < 0 ||
        json_object_set_new(layer, "bytes",
                            json_integer(json_integer_value(
                                json_object_get(result, "bytes")))) < 0) {
        json_decref(layer);
        set_memory_error(err);
        return NULL;
    }
    return layer;
}

/* Returns the "layers" list, checking each result against the manifest
 * and its entries for the fields the merge reads, or NULL. */
static json_t *
layer_list(const json_t *manifest, json_t *const *results, size_t n_layers,
           struct pg_error **err)
{
    const json_t *descriptors = json_object_get(manifest, "layers");
    json_t *layers = json_array();

    if (layers == NULL) {
        set_memory_error(err);
        return NULL;
    }
    for (size_t i = 0; i < n_layers; i++) {
        json_t *descriptor = json_array_get(descriptors, i);

        if (append_new(layers, document_layer(descriptor, results[i], i, err),
                       err) < 0 ||
            check_layer_files(results[i], i, err) < 0) {
            json_decref(layers);
            return NULL;
        }
    }
    return layers;
}

/* ---- findings: os-release, packages, licenses, secrets, notes ---- */

/* The findings of every layer, each item a copy with "layer" added. */
struct findings {
    json_t *os;       /* os-release files still visible */
    json_t *packages; /* packages whose file is still visible */
    json_t *licenses; /* dpkg copyright files still visible */
    json_t *secrets;  /* all, with "present" */
    json_t *notes;    /* all */
};

/* The rule that keeps a layer's findings and adds fields to them. */
enum keep_rule {
    KEEP_VISIBLE,      /* only when its file is the visible entry */
    KEEP_WITH_PRESENT, /* always, with "present" */
    KEEP_ALL,          /* always; "path" is optional */
};

/* The namespace of OS package URLs when the image has no os-release ID:
 * the distribution each package format is best known from. */
static const char *const os_package_types[][2] = {
    {"deb", "debian"},
    {"apk", "alpine"},
    {"rpm", "redhat"},
};

/* The os-release files in order of preference, as systemd's
 * os-release(5) reads them. */
static const char *const os_release_paths[] = {
    "etc/os-release",
    "usr/lib/os-release",
};

/* Bytes of the text form of an RPM epoch held as an integer. */
#define EPOCH_TEXT_MAX 24

static void
findings_release(struct findings *found)
{
    json_decref(found->notes);
    json_decref(found->secrets);
    json_decref(found->licenses);
    json_decref(found->packages);
    json_decref(found->os);
}

static int
findings_init(struct findings *found, struct pg_error **err)
{
    found->os = json_array();
    found->packages = json_array();
    found->licenses = json_array();
    found->secrets = json_array();
    found->notes = json_array();
    if (found->os == NULL || found->packages == NULL ||
        found->licenses == NULL || found->secrets == NULL ||
        found->notes == NULL) {
        set_memory_error(err);
        return -1;
    }
    return 0;
}

static int
finding_error(const char *key, size_t index, size_t layer,
              struct pg_error **err)
{
    pg_error_set(err, 500, PG_ERR_INTERNAL,
                 "findings.%s[%zu] of the result for layer %zu is not an "
                 "object with a \"path\" string; results must come from "
                 "inspector_list_layer",
                 key, index, layer);
    return -1;
}

/*
 * Appends to out a copy of each item of findings[key] that rule keeps,
 * with "layer" added. The copy shares its values with the item.
 */
static int
collect_findings(json_t *out, const json_t *findings, const char *key,
                 enum keep_rule rule, const struct merged_fs *fs, size_t layer,
                 struct pg_error **err)
{
    const json_t *list = json_object_get(findings, key);
    const json_t *item;
    size_t i;

    if (list != NULL && !json_is_array(list)) {
        pg_error_set(err, 500, PG_ERR_INTERNAL,
                     "findings.%s of the result for layer %zu is not an "
                     "array; results must come from inspector_list_layer",
                     key, layer);
        return -1;
    }
    json_array_foreach(list, i, item)
    {
        const json_t *path = json_object_get(item, "path");
        bool visible;
        json_t *copy;

        if (!json_is_object(item) ||
            (rule != KEEP_ALL && !json_is_string(path)))
            return finding_error(key, i, layer, err);
        visible = json_is_string(path) && merge_visible_from(fs, path, layer);
        if (rule == KEEP_VISIBLE && !visible)
            continue;

        copy = json_copy((json_t *)item);
        if (copy == NULL ||
            set_new(copy, "layer", json_integer((json_int_t)layer), err) < 0 ||
            (rule == KEEP_WITH_PRESENT &&
             (set_new(copy, "present", json_boolean(visible), err) < 0 ||
              set_new(copy, "source", json_string("layer"), err) < 0)) ||
            append_new(out, copy, err) < 0) {
            if (copy == NULL)
                set_memory_error(err);
            return -1;
        }
    }
    return 0;
}

/* Collects the findings of every layer result that the merged file
 * system keeps. A result without "findings" found nothing. */
static int
findings_collect(struct findings *found, const struct merged_fs *fs,
                 json_t *const *results, size_t n_layers, struct pg_error **err)
{
    for (size_t layer = 0; layer < n_layers; layer++) {
        const json_t *findings = json_object_get(results[layer], "findings");

        if (findings == NULL)
            continue;
        if (!json_is_object(findings)) {
            pg_error_set(err, 500, PG_ERR_INTERNAL,
                         "findings of the result for layer %zu are not an "
                         "object; results must come from "
                         "inspector_list_layer",
                         layer);
            return -1;
        }
        if (collect_findings(found->os, findings, "os", KEEP_VISIBLE, fs, layer,
                             err) < 0 ||
            collect_findings(found->packages, findings, "packages",
                             KEEP_VISIBLE, fs, layer, err) < 0 ||
            collect_findings(found->licenses, findings, "licenses",
                             KEEP_VISIBLE, fs, layer, err) < 0 ||
            collect_findings(found->secrets, findings, "secrets",
                             KEEP_WITH_PRESENT, fs, layer, err) < 0 ||
            collect_findings(found->notes, findings, "notes", KEEP_ALL, fs,
                             layer, err) < 0)
            return -1;
    }
    return 0;
}

/* Returns the rank of an os-release path in os_release_paths, or the
 * number of paths for any other file. */
static size_t
os_release_rank(const json_t *os)
{
    const char *path = json_string_value(json_object_get(os, "path"));
    size_t n = sizeof(os_release_paths) / sizeof(os_release_paths[0]);

    for (size_t i = 0; i < n; i++) {
        if (strcmp(path, os_release_paths[i]) == 0)
            return i;
    }
    return n;
}

/* Returns the visible os-release finding that os-release(5) would read,
 * or NULL when the image has none. The first of equal rank wins. */
static const json_t *
choose_os(const json_t *os_list)
{
    const json_t *best = NULL;
    const json_t *os;
    size_t i;

    json_array_foreach(os_list, i, os)
    {
        if (best == NULL || os_release_rank(os) < os_release_rank(best))
            best = os;
    }
    return best;
}

/* ---- package URLs and licenses of OS packages ---- */

/* The distribution an image's os-release file names. */
struct os_identity {
    const char *id;         /* NULL when the image has no os-release ID */
    const char *version_id; /* "" when the file has no VERSION_ID */
};

static struct os_identity
os_identity_of(const json_t *os)
{
    struct os_identity identity = {.id = NULL, .version_id = ""};
    const char *id = json_string_value(json_object_get(os, "id"));
    const char *version_id =
        json_string_value(json_object_get(os, "version_id"));

    if (id != NULL && id[0] != '\0')
        identity.id = id;
    if (identity.id != NULL && version_id != NULL)
        identity.version_id = version_id;
    return identity;
}

/* Returns a new string of a, b and c joined, or NULL. */
static char *
join3(const char *a, const char *b, const char *c)
{
    size_t a_len = strlen(a);
    size_t b_len = strlen(b);
    size_t c_len = strlen(c);
    char *joined = malloc(a_len + b_len + c_len + 1);

    if (joined == NULL)
        return NULL;
    memcpy(joined, a, a_len);
    memcpy(joined + a_len, b, b_len);
    memcpy(joined + a_len + b_len, c, c_len + 1);
    return joined;
}

/* Returns a new lowercase copy of text, or NULL. The purl specification
 * requires lowercase deb, apk and rpm namespaces. */
static char *
ascii_lowercase_copy(const char *text)
{
    char *copy = strdup(text);

    for (char *p = copy; p != NULL && *p != '\0'; p++)
        *p = ascii_lower(*p);
    return copy;
}

/* Returns the purl version of a package: an RPM's "version-release", as
 * the purl rpm type defines it, or the version as it is. The RPM
 * cataloger may already have joined them; VERSION has no '-' in RPM. */
static char *
purl_version(const json_t *package, const char *type)
{
    const char *version =
        json_string_value(json_object_get(package, "version"));
    const char *release =
        json_string_value(json_object_get(package, "release"));

    if (version == NULL)
        version = "";
    if (strcmp(type, "rpm") != 0 || release == NULL || release[0] == '\0' ||
        strchr(version, '-') != NULL)
        return strdup(version);
    return join3(version, "-", release);
}

/* Writes an RPM's "epoch", a string or an integer, to buf ("" when it has
 * none). */
static void
epoch_text(const json_t *package, char *buf, size_t size)
{
    const json_t *epoch = json_object_get(package, "epoch");

    buf[0] = '\0';
    if (json_is_string(epoch))
        snprintf(buf, size, "%s", json_string_value(epoch));
    else if (json_is_integer(epoch))
        snprintf(buf, size, "%" JSON_INTEGER_FORMAT, json_integer_value(epoch));
}

/*
 * Returns the package URL of a deb, apk or rpm package, or NULL when
 * memory is short. The namespace is the os-release ID, or
 * default_namespace without one. The qualifiers are arch, epoch (rpm) and
 * distro "ID-VERSION_ID", the form of purl's examples ("debian-12"), which
 * needs both.
 */
static json_t *
os_package_purl(const json_t *package, const char *type,
                const char *default_namespace, const struct os_identity *os)
{
    char epoch[EPOCH_TEXT_MAX] = "";
    const char *name = json_string_value(json_object_get(package, "name"));
    const char *qualifiers[] = {
        "arch",   json_string_value(json_object_get(package, "arch")),
        "epoch",  NULL,
        "distro", NULL,
        NULL,
    };
    char *namespace =
        ascii_lowercase_copy(os->id != NULL ? os->id : default_namespace);
    char *version = purl_version(package, type);
    char *distro = NULL;
    json_t *purl = NULL;

    if (strcmp(type, "rpm") == 0) {
        epoch_text(package, epoch, sizeof(epoch));
        qualifiers[3] = epoch;
    }
    if (os->id != NULL && os->version_id[0] != '\0') {
        distro = join3(os->id, "-", os->version_id);
        if (distro == NULL)
            goto out;
        qualifiers[5] = distro;
    }
    if (namespace != NULL && version != NULL)
        purl = catalog_purl(type, namespace, name != NULL ? name : "", version,
                            qualifiers);

out:
    free(distro);
    free(version);
    free(namespace);
    return purl;
}

/* Returns {"id", "version_id"} of the image's distribution, JSON null
 * when it has no os-release ID, or NULL when memory is short. */
static json_t *
os_package_distro(const struct os_identity *os)
{
    if (os->id == NULL)
        return json_null();
    return json_pack("{s:s, s:s}", "id", os->id, "version_id", os->version_id);
}

/* Returns the default namespace of an OS package type, or NULL for the
 * package types of language ecosystems. */
static const char *
os_package_namespace(const char *type)
{
    size_t n = sizeof(os_package_types) / sizeof(os_package_types[0]);

    for (size_t i = 0; type != NULL && i < n; i++) {
        if (strcmp(type, os_package_types[i][0]) == 0)
            return os_package_types[i][1];
    }
    return NULL;
}

/*
 * Returns {package name: licenses} from the visible dpkg copyright files,
 * or NULL when memory is short. A package has one copyright file,
 * usr/share/doc/NAME/copyright, so the first one found is kept.
 */
static json_t *
license_index(const json_t *licenses)
{
    json_t *index = json_object();
    const json_t *item;
    size_t i;

    if (index == NULL)
        return NULL;
    json_array_foreach(licenses, i, item)
    {
        const json_t *name = json_object_get(item, "package");
        const json_t *list = json_object_get(item, "licenses");

        if (!json_is_string(name) || !json_is_array(list) ||
            json_object_getn(index, json_string_value(name),
                             json_string_length(name)) != NULL)
            continue;
        if (json_object_setn_new(index, json_string_value(name),
                                 json_string_length(name),
                                 json_incref((json_t *)list)) < 0) {
            json_decref(index);
            return NULL;
        }
    }
    return index;
}

/*
 * Gives a deb package without licenses those of its copyright file. A
 * name with an architecture, "libc6:amd64", documents itself under the
 * plain name, as dpkg installs multiarch packages' doc directories.
 */
static int
package_join_licenses(json_t *package, const json_t *index,
                      struct pg_error **err)
{
    const json_t *name = json_object_get(package, "name");
    const json_t *own = json_object_get(package, "licenses");
    const json_t *licenses;
    const char *colon;
    size_t len;

    if (!json_is_string(name) || json_array_size(own) > 0)
        return 0;
    colon = memchr(json_string_value(name), ':', json_string_length(name));
    len = colon != NULL ? (size_t)(colon - json_string_value(name))
                        : json_string_length(name);
    licenses = json_object_getn(index, json_string_value(name), len);
    if (licenses == NULL)
        return 0;
    return set_new(package, "licenses", json_incref((json_t *)licenses), err);
}

/* Adds what needs more than the package's own layer: the distribution in
 * OS package URLs and dpkg licenses. */
static int
packages_complete(json_t *packages, const json_t *licenses, const json_t *os,
                  struct pg_error **err)
{
    struct os_identity identity = os_identity_of(os);
    json_t *index = license_index(licenses);
    json_t *package;
    size_t i;
    int rc = -1;

    if (index == NULL) {
        set_memory_error(err);
        return -1;
    }
    json_array_foreach(packages, i, package)
    {
        const char *type = json_string_value(json_object_get(package, "type"));
        const char *namespace = os_package_namespace(type);

        if (namespace != NULL &&
            (set_new(package, "purl",
                     os_package_purl(package, type, namespace, &identity),
                     err) < 0 ||
             set_new(package, "distro", os_package_distro(&identity), err) < 0))
            goto out;
        if (type != NULL && strcmp(type, "deb") == 0 &&
            package_join_licenses(package, index, err) < 0)
            goto out;
    }
    rc = 0;

out:
    json_decref(index);
    return rc;
}

/* A package and its place in the order the catalogers found it, which
 * breaks ties so that the sort is stable. */
struct package_slot {
    json_t *package;
    size_t order;
};

static int
compare_members(const json_t *a, const json_t *b, const char *key)
{
    const json_t *value_a = json_object_get(a, key);
    const json_t *value_b = json_object_get(b, key);

    return compare_bytes(
        json_is_string(value_a) ? json_string_value(value_a) : "",
        json_string_length(value_a),
        json_is_string(value_b) ? json_string_value(value_b) : "",
        json_string_length(value_b));
}

static int
compare_packages(const void *a, const void *b)
{
    static const char *const keys[] = {"type", "name", "version", "path"};
    const struct package_slot *slot_a = a;
    const struct package_slot *slot_b = b;

    for (size_t i = 0; i < sizeof(keys) / sizeof(keys[0]); i++) {
        int rc = compare_members(slot_a->package, slot_b->package, keys[i]);

        if (rc != 0)
            return rc;
    }
    return (slot_a->order > slot_b->order) - (slot_a->order < slot_b->order);
}

/* Returns a new array of packages sorted by type, name, version and path,
 * or NULL when memory is short. */
static json_t *
packages_sorted(const json_t *packages)
{
    size_t n = json_array_size(packages);
    struct package_slot *slots = calloc(n + 1, sizeof(*slots));
    json_t *sorted = json_array();

    if (slots == NULL || sorted == NULL) {
        free(slots);
        json_decref(sorted);
        return NULL;
    }
    for (size_t i = 0; i < n; i++) {
        slots[i].package = json_array_get(packages, i);
        slots[i].order = i;
    }
    qsort(slots, n, sizeof(*slots), compare_packages);
    for (size_t i = 0; i < n; i++) {
        if (json_array_append(sorted, slots[i].package) < 0) {
            json_decref(sorted);
            sorted = NULL;
            break;
        }
    }
    free(slots);
    return sorted;
}

/* Adds "os", "packages", "secrets" and inspection.notes. */
static int
document_add_findings(json_t *document, const struct findings *found,
                      struct pg_error **err)
{
    const json_t *os = choose_os(found->os);
    json_t *packages;

    if (packages_complete(found->packages, found->licenses, os, err) < 0)
        return -1;
    packages = packages_sorted(found->packages);
    if (packages == NULL) {
        set_memory_error(err);
        return -1;
    }
    if (set_new(document, "os",
                os != NULL ? json_incref((json_t *)os) : json_null(),
                err) < 0 ||
        set_new(document, "packages", packages, err) < 0 ||
        set_new(document, "secrets", json_incref(found->secrets), err) < 0 ||
        set_new(json_object_get(document, "inspection"), "notes",
                json_incref(found->notes), err) < 0)
        return -1;
    return 0;
}

/* ---- the summary ---- */

static void
summary_release(struct file_summary *summary)
{
    json_decref(summary->world_writable);
    json_decref(summary->setuid_files);
}

static int
document_add_summary(json_t *document, const struct file_summary *summary,
                     size_t n_layers, struct pg_error **err)
{
    return set_new(
        document, "summary",
        json_pack(
            "{s:I, s:I, s:I, s:O, s:O, s:I, s:I}", "layers",
            (json_int_t)n_layers, "files", summary->files, "present_files",
            summary->present_files, "setuid_files", summary->setuid_files,
            "world_writable", summary->world_writable, "packages",
            (json_int_t)json_array_size(json_object_get(document, "packages")),
            "secrets",
            (json_int_t)json_array_size(json_object_get(document, "secrets"))),
        err);
}

/*
 * Adds "layers", "files", the findings and "summary" from the layer
 * results: the layers are merged first, because what a later layer
 * deletes or replaces decides which files and findings count.
 */
int
document_add_layers(json_t *document, const json_t *manifest,
                    json_t *const *results, size_t n_layers,
                    struct pg_error **err)
{
    struct file_summary summary = {
        .setuid_files = json_array(),
        .world_writable = json_array(),
    };
    struct merged_fs fs = {0};
    struct findings found = {0};
    json_t *layers = NULL;
    json_t *files = json_array();
    int rc = -1;

    if (files == NULL || summary.setuid_files == NULL ||
        summary.world_writable == NULL) {
        set_memory_error(err);
        goto out;
    }
    layers = layer_list(manifest, results, n_layers, err);
    if (layers == NULL || merge_layers(&fs, results, n_layers, err) < 0 ||
        add_files(files, &summary, &fs, results, n_layers, err) < 0 ||
        findings_init(&found, err) < 0 ||
        findings_collect(&found, &fs, results, n_layers, err) < 0)
        goto out;

    if (set_new(document, "layers", json_incref(layers), err) < 0 ||
        set_new(document, "files", json_incref(files), err) < 0 ||
        document_add_findings(document, &found, err) < 0 ||
        document_add_summary(document, &summary, n_layers, err) < 0)
        goto out;
    rc = 0;

out:
    findings_release(&found);
    merged_fs_release(&fs);
    summary_release(&summary);
    json_decref(files);
    json_decref(layers);
    return rc;
}
