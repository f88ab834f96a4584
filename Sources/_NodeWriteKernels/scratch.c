/* posix_memalign */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
/* Scratch memory of one call, kept for the next one: a freed buffer goes to a small process-wide
   list (at most KEPT buffers, KEPT_BYTES in all) instead of back to the system, so that calls
   repeated in a loop stop faulting in fresh pages (glibc serves buffers this large from fresh
   mappings, or from heaps it trims on free). See include/nw_kernels.h. */
#include "nw_kernels.h"
#include "nwk_internal.h"

#include <pthread.h>
#include <stdlib.h>

#define KEPT 8
#define KEPT_BYTES ((size_t)64 << 20)
/* Room before the caller's pointer for the buffer's capacity (keeps 64-byte alignment). */
#define HEADER 64

static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static void *g_kept[KEPT]; /* raw buffers; capacity in their headers */
static size_t g_kept_bytes;
static int g_count;
static pthread_once_t g_atfork_once = PTHREAD_ONCE_INIT;

static void lock(void) { pthread_mutex_lock(&g_mu); }
static void unlock(void) { pthread_mutex_unlock(&g_mu); }
/* A fork while another thread holds the lock would leave it locked in the child. */
static void register_atfork(void) { pthread_atfork(lock, unlock, unlock); }

static size_t capacity_of(void *raw) { return *(size_t *)raw; }

#ifdef NWK_TESTING
int nwk_test_fail_alloc; /* > 0: the next allocations fail (tests_c/kernels.c) */
#endif

int nwk_scratch_alloc(void **p, size_t bytes) {
#ifdef NWK_TESTING
    if (nwk_test_fail_alloc > 0) { nwk_test_fail_alloc--; return -1; }
#endif
    pthread_once(&g_atfork_once, register_atfork);
    void *raw = NULL;
    lock();
    int best = -1;
    for (int i = 0; i < g_count; i++)
        if (capacity_of(g_kept[i]) >= bytes && (best < 0 || capacity_of(g_kept[i]) < capacity_of(g_kept[best]))) best = i;
    if (best >= 0) {
        raw = g_kept[best];
        g_kept_bytes -= capacity_of(raw);
        g_kept[best] = g_kept[--g_count];
    }
    unlock();
    if (!raw) {
        const size_t capacity = (bytes + 4095) & ~(size_t)4095;
        if (capacity < bytes || capacity > SIZE_MAX - HEADER) return -1;
        if (posix_memalign(&raw, 64, capacity + HEADER) != 0) return -1;
        *(size_t *)raw = capacity;
    }
    *p = (char *)raw + HEADER;
    return 0;
}

void nwk_scratch_free(void *p) {
    if (!p) return;
    void *raw = (char *)p - HEADER;
    const size_t capacity = capacity_of(raw);
    lock();
    const int keep = g_count < KEPT && capacity <= KEPT_BYTES - g_kept_bytes;
    if (keep) {
        g_kept[g_count++] = raw;
        g_kept_bytes += capacity;
    }
    unlock();
    if (!keep) free(raw);
}
