/*
 * tmpdir.h - removing a test's temporary directory with everything in it
 * (made with mkdtemp in a fixture's setup).  A header of static functions,
 * like limit_files.h: each test program is one translation unit.
 */
#ifndef BR_TEST_TMPDIR_H
#define BR_TEST_TMPDIR_H

#include <ftw.h>
#include <stdio.h>
#include <sys/stat.h>

static int
tmpdir_remove_entry(const char *path, const struct stat *st, int flag, struct FTW *ftw)
{
    (void)st;
    (void)flag;
    (void)ftw;
    return remove(path);
}

/* Removes dir and everything below it; the test does not care whether it worked. */
static void
tmpdir_remove(const char *dir)
{
    nftw(dir, tmpdir_remove_entry, 16, FTW_DEPTH | FTW_PHYS);
}

#endif
