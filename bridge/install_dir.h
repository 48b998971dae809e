/*
 * install_dir.h - where the bridge finds the files it is installed with:
 * the default templates, <prefix>/share/chatra-bridge/templates, found
 * from the binary's own path, so that an installed tree works wherever
 * its prefix is (and when moved).  A binary still in its build tree reads
 * the source tree's templates/ instead; an installed one never does.
 * BR_TEMPLATES_DIR in the environment overrides both (the config's
 * templates_dir overrides it in turn: config_templates.c).
 */
#ifndef BR_INSTALL_DIR_H
#define BR_INSTALL_DIR_H

/* The directory of the default templates (templates/<language>/<name>): free it. */
char *br_install_templates_dir(void);

#endif
