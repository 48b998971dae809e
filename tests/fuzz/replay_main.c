/*
 * replay_main.c - runs a fuzz target without libFuzzer: every argument is
 * a file or a directory (not recursive), and every file is read whole and
 * passed once to LLVMFuzzerTestOneInput, in name order so runs repeat.
 * Linked with one tests/fuzz/fuzz_*.c into replay_<name>, which CTest
 * runs over tests/fuzz/corpus/<name> with any compiler and sanitizer.
 *
 * Exit status 0 when every input ran; a crash or sanitizer report in the
 * target ends the process as it would under libFuzzer.  An argument that
 * cannot be read, or an empty corpus, is a failure too, so a wrong path
 * in CMake does not pass silently.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static int
run_file(const char *path)
{
    FILE *fp = fopen(path, "rb");
    uint8_t *data = NULL;
    size_t len = 0, cap = 0, n;

    if (fp == NULL) {
        fprintf(stderr, "replay: cannot open %s: %s\n", path, strerror(errno));
        return -1;
    }
    for (;;) {
        if (len == cap) {
            cap = cap ? cap * 2 : 4096;
            data = realloc(data, cap);
            if (data == NULL) {
                fprintf(stderr, "replay: out of memory reading %s\n", path);
                fclose(fp);
                return -1;
            }
        }
        n = fread(data + len, 1, cap - len, fp);
        if (n == 0)
            break;
        len += n;
    }
    if (ferror(fp)) {
        fprintf(stderr, "replay: cannot read %s\n", path);
        fclose(fp);
        free(data);
        return -1;
    }
    fclose(fp);
    /* An exact-size copy, so that reading past the input is caught by ASan as under libFuzzer. */
    {
        uint8_t *exact = malloc(len ? len : 1);
        if (exact == NULL) {
            free(data);
            return -1;
        }
        if (len)
            memcpy(exact, data, len);
        free(data);
        fprintf(stderr, "replay: %s (%zu bytes)\n", path, len);
        LLVMFuzzerTestOneInput(exact, len);
        free(exact);
    }
    return 0;
}

static int
by_name(const struct dirent **a, const struct dirent **b)
{
    return strcmp((*a)->d_name, (*b)->d_name);
}

int
main(int argc, char **argv)
{
    size_t runs = 0;
    int failed = 0;

    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIR...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        struct stat st;
        if (stat(argv[i], &st) != 0) {
            fprintf(stderr, "replay: %s: %s\n", argv[i], strerror(errno));
            failed = 1;
            continue;
        }
        if (S_ISDIR(st.st_mode)) {
            struct dirent **names;
            int n = scandir(argv[i], &names, NULL, by_name);
            if (n < 0) {
                fprintf(stderr, "replay: cannot list %s: %s\n", argv[i], strerror(errno));
                failed = 1;
                continue;
            }
            for (int k = 0; k < n; k++) {
                char *path;
                struct stat fst;
                size_t plen = strlen(argv[i]) + strlen(names[k]->d_name) + 2;
                if ((path = malloc(plen)) == NULL)
                    abort();
                snprintf(path, plen, "%s/%s", argv[i], names[k]->d_name);
                if (names[k]->d_name[0] != '.' && stat(path, &fst) == 0 && S_ISREG(fst.st_mode)) {
                    if (run_file(path) == 0)
                        runs++;
                    else
                        failed = 1;
                }
                free(path);
                free(names[k]);
            }
            free(names);
        } else {
            if (run_file(argv[i]) == 0)
                runs++;
            else
                failed = 1;
        }
    }
    fprintf(stderr, "replay: %zu inputs run%s\n", runs, failed ? ", some could not be read" : "");
    if (runs == 0)
        failed = 1;
    return failed;
}
