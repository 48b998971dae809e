/*
 * admin_files.h - the admin page's files (admin/ in the source tree),
 * embedded in the binary at build time: cmake/embed_files.cmake writes
 * admin_files.c in the build directory from them.  Read-only data.
 */
#ifndef BR_ADMIN_FILES_H
#define BR_ADMIN_FILES_H

#include <stddef.h>

struct br_admin_file {
    const char *name;           /* "index.html": the name under admin/, NULL ends the table */
    const unsigned char *data;  /* len bytes, and a NUL after them */
    size_t len;
};

extern const struct br_admin_file br_admin_files[];

#endif
