/*
 * temp_store.h - a test's store in a temporary directory of its own:
 * made in a fixture's setup, removed with everything in it at teardown.
 * A header of static functions, like tmpdir.h; include it after cmocka.h.
 */
#ifndef BR_TEST_TEMP_STORE_H
#define BR_TEST_TEMP_STORE_H

#include <stdio.h>
#include <stdlib.h>

#include "bridge/br.h"
#include "bridge/store.h"
#include "tmpdir.h"

/*
 * Makes /tmp/br-test-<name>-XXXXXX in dir (64 bytes) and opens a store
 * there as bridge.db; returns that file's path, for temp_store_close.
 */
static char *
temp_store_open(char *dir, const char *name, struct br_store **s)
{
    char *path;

    snprintf(dir, 64, "/tmp/br-test-%s-XXXXXX", name);
    assert_non_null(mkdtemp(dir));
    path = br_asprintf("%s/bridge.db", dir);
    assert_int_equal(br_store_open(s, path), 0);
    assert_non_null(*s);
    return path;
}

/* Closes the store and removes its directory. */
static void
temp_store_close(char *dir, char *path, struct br_store *s)
{
    br_store_free(s);
    tmpdir_remove(dir);
    free(path);
}

#endif
