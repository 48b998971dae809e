#include "ratelimit.h"

#include "br.h"

#include <stdlib.h>
#include <string.h>

#define SLOTS 1024
#define WAYS 8 /* an address lives in one of 8 slots after its hash */

struct slot {
    char addr[64];
    double tokens;
    int64_t last_ms;
};

struct br_ratelimit {
    double rate;
    double burst;
    struct slot slots[SLOTS];
};

struct br_ratelimit *
br_ratelimit_new(double rate, double burst)
{
    struct br_ratelimit *rl = br_calloc(1, sizeof(*rl));
    rl->rate = rate;
    rl->burst = burst < 1 ? 1 : burst;
    return rl;
}

void
br_ratelimit_free(struct br_ratelimit *rl)
{
    free(rl);
}

static uint32_t
hash(const char *s)
{
    uint32_t h = 2166136261u;
    for (; *s; s++) {
        h ^= (unsigned char)*s;
        h *= 16777619u;
    }
    return h;
}

bool
br_ratelimit_take(struct br_ratelimit *rl, const char *addr, int64_t now_ms)
{
    uint32_t h = hash(addr);
    struct slot *sl = NULL, *oldest = NULL;

    if (rl->rate <= 0)
        return true;
    for (int i = 0; i < WAYS; i++) {
        struct slot *c = &rl->slots[(h + (uint32_t)i) % SLOTS];
        if (strncmp(c->addr, addr, sizeof(c->addr) - 1) == 0 && c->addr[0]) {
            sl = c;
            break;
        }
        if (oldest == NULL || c->last_ms < oldest->last_ms)
            oldest = c;
    }
    if (sl == NULL) {
        /* New (or evicted) address: a full bucket. */
        sl = oldest;
        memset(sl, 0, sizeof(*sl));
        strncpy(sl->addr, addr, sizeof(sl->addr) - 1);
        sl->tokens = rl->burst;
        sl->last_ms = now_ms;
    }
    sl->tokens += (double)(now_ms - sl->last_ms) / 1000.0 * rl->rate;
    if (sl->tokens > rl->burst)
        sl->tokens = rl->burst;
    sl->last_ms = now_ms;
    if (sl->tokens < 1)
        return false;
    sl->tokens -= 1;
    return true;
}
