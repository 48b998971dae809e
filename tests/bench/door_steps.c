/*
 * door_steps.c - what each step of taking a Chatra webhook costs, alone,
 * on one core: tests/bench/bench.py runs it after the intake part with the
 * body wrk sent, and prints the figures beside nginx's whole round trip.
 *
 *   bench_door_steps [N] < body.json
 *
 * The steps, each timed over N rounds (default 20,000), in microseconds a
 * webhook:
 *   json    jansson's json_loadb of the body (the library's parse alone)
 *   parse   br_chatra_event_parse (that parse, checked and mapped)
 *   dump    br_chatra_event_dump (the record the inbox keeps)
 *   store   the record queued and committed to an inbox of a real store
 *           (WAL, synchronous=NORMAL, in a temporary directory), 16 to a
 *           commit, about what a busy loop turn groups
 *   load    br_chatra_event_load (the engine reading the record back)
 * Printed as one line: DOOR_JSON {"bytes":..,"json_us":..,...}.
 */
#include "bridge/br.h"
#include "bridge/chatra_event.h"
#include "bridge/store.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define GROUP 16

static double
now_us(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec * 1e6 + (double)t.tv_nsec / 1e3;
}

static char *
read_all(FILE *f, size_t *len)
{
    size_t cap = 4096, n = 0, got;
    char *b = br_malloc(cap);

    while ((got = fread(b + n, 1, cap - n - 1, f)) > 0) {
        n += got;
        if (cap - n < 2)
            b = br_realloc(b, cap *= 2);
    }
    while (n > 0 && (b[n - 1] == '\n' || b[n - 1] == '\r'))
        n--;
    b[n] = '\0';
    *len = n;
    return b;
}

int
main(int argc, char **argv)
{
    int rounds = argc > 1 ? atoi(argv[1]) : 20000;
    char dir[] = "/tmp/br-bench-door-XXXXXX", err[200];
    struct br_chatra_event ev;
    struct br_store *s = NULL;
    double t, json_us, parse_us, dump_us, store_us, load_us;
    size_t len, n;
    char *body = read_all(stdin, &len), *record, *db;
    int rc = 1;

    if (rounds < 1 || len == 0) {
        fprintf(stderr, "usage: bench_door_steps [rounds] < body.json\n");
        free(body);
        return 2;
    }
    if (br_chatra_event_parse(body, len, &ev, err, sizeof(err)) != 0) {
        fprintf(stderr, "bench_door_steps: the body is not a webhook the bridge takes: %s\n", err);
        free(body);
        return 1;
    }
    record = br_chatra_event_dump(&ev);
    br_chatra_event_dispose(&ev);

    t = now_us();
    for (int i = 0; i < rounds; i++) {
        json_error_t je;
        json_decref(json_loadb(body, len, JSON_REJECT_DUPLICATES, &je));
    }
    json_us = (now_us() - t) / rounds;

    t = now_us();
    for (int i = 0; i < rounds; i++) {
        br_chatra_event_parse(body, len, &ev, err, sizeof(err));
        br_chatra_event_dispose(&ev);
    }
    parse_us = (now_us() - t) / rounds;

    br_chatra_event_parse(body, len, &ev, err, sizeof(err));
    t = now_us();
    for (int i = 0; i < rounds; i++)
        free(br_chatra_event_dump(&ev));
    dump_us = (now_us() - t) / rounds;
    br_chatra_event_dispose(&ev);

    t = now_us();
    for (int i = 0; i < rounds; i++) {
        br_chatra_event_load(record, &ev);
        br_chatra_event_dispose(&ev);
    }
    load_us = (now_us() - t) / rounds;

    if (mkdtemp(dir) == NULL) {
        perror("bench_door_steps: mkdtemp");
        goto out;
    }
    db = br_asprintf("%s/bridge.db", dir);
    if (br_store_open(&s, db) != 0) {
        fprintf(stderr, "bench_door_steps: cannot open a store in %s\n", dir);
        free(db);
        goto out;
    }
    t = now_us();
    for (int i = 0; i < rounds; i++) {
        br_store_inbox_queue(s, BR_INBOX_CHATRA, "shop", record, strlen(record));
        if ((i + 1) % GROUP == 0 || i + 1 == rounds)
            br_store_inbox_flush(s, &n);
    }
    store_us = (now_us() - t) / rounds;
    br_store_free(s);
    for (const char *const *sfx = (const char *const[]){"", "-wal", "-shm", ".lock", NULL}; *sfx; sfx++) {
        char *p = br_asprintf("%s%s", db, *sfx);
        unlink(p);
        free(p);
    }
    free(db);
    rmdir(dir);
    printf("DOOR_JSON {\"bytes\":%zu,\"rounds\":%d,\"json_us\":%.2f,\"parse_us\":%.2f,\"dump_us\":%.2f,"
           "\"store_us\":%.2f,\"load_us\":%.2f}\n",
           len, rounds, json_us, parse_us, dump_us, store_us, load_us);
    rc = 0;
out:
    free(record);
    free(body);
    return rc;
}
