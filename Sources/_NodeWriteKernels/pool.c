/* The threads of nwk_run_parts, kept between calls. A thread started for a call begins its part
   70-270 us after pthread_create on the 2-core VM this was measured on, about as long as a 9 MB
   scaled copy takes: kept helpers, spinning for a short while after each call, start at once
   (the K = 1 product of 3,072 MLP rows: 325-335 us against 430-630 us with threads made per call).

   One caller at a time owns the helpers (a trylock); a concurrent caller, or a part that itself
   asks for threads, gets threads of its own for the call, as before. Parts are claimed from one
   counter (g_claim) by the caller and the helpers alike: the caller runs part 0, then claims every
   part no helper has claimed yet, so a call never waits for a helper that has not started (on a
   loaded machine a helper may wait for a core while the caller would sit idle); it waits only for
   parts a helper is running. A part's output depends on its argument only, never on the thread
   that runs it, so results do not depend on which thread claimed what. A part reports its errors
   through its argument, which the caller reads once every part is done.
   fork: the child has no helpers and makes new ones when first asked. Unloading the library
   (dlclose, exit) stops and joins them. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include "nwk_internal.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <time.h>

/* How long an idle helper spins before it sleeps on the condition variable; it does not spin
   when the parts outnumber the CPUs the process may run on (it would take one from the caller). */
#define SPIN_NS 200000

static pthread_mutex_t g_owner = PTHREAD_MUTEX_INITIALIZER; /* held by the caller using the helpers */
static pthread_mutex_t g_sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t g_sleep_cv = PTHREAD_COND_INITIALIZER;
static pthread_t g_helpers[NWK_MAX_THREADS - 1];
static uint64_t g_first_seen[NWK_MAX_THREADS - 1]; /* g_job when helper h was made */
static int g_nhelpers;       /* written by the owner only */
/* The job: (sequence << 8) | (spin << 7) | parts, published with release after the fields below. */
static _Atomic uint64_t g_job;
static void *(*g_fn)(void *);
static char *g_base;
static size_t g_size;
/* (sequence << 8) | the next part not yet claimed, of the job with that sequence: a part is
   claimed by a compare-and-swap that also checks the sequence, so a helper late for a job claims
   nothing of it (nor of the next one). */
static _Atomic uint64_t g_claim;
static atomic_int g_done;    /* parts of the current job finished, by anyone */
static pthread_mutex_t g_done_mu = PTHREAD_MUTEX_INITIALIZER; /* the owner's sleep when helpers are slow */
static pthread_cond_t g_done_cv = PTHREAD_COND_INITIALIZER;
static atomic_int g_quit;
static pthread_once_t g_once = PTHREAD_ONCE_INIT;
static int g_cpus = 1;       /* CPUs this process may run on, read once */

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static inline void relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
}

/* The next job after `seen`, or 0 when asked to quit: spins for SPIN_NS if `seen` says so, then
   sleeps. */
static uint64_t wait_job(uint64_t seen) {
    const int64_t until = now_ns() + SPIN_NS;
    for (int i = 0; seen & 0x80; i++) {
        const uint64_t job = atomic_load_explicit(&g_job, memory_order_acquire);
        if (job != seen) return job;
        if (atomic_load_explicit(&g_quit, memory_order_relaxed)) return 0;
        relax();
        if ((i & 255) == 255 && now_ns() > until) break;
    }
    pthread_mutex_lock(&g_sleep_mu);
    uint64_t job;
    while ((job = atomic_load_explicit(&g_job, memory_order_acquire)) == seen && !atomic_load(&g_quit))
        pthread_cond_wait(&g_sleep_cv, &g_sleep_mu);
    pthread_mutex_unlock(&g_sleep_mu);
    return atomic_load(&g_quit) ? 0 : job;
}

/* A part of job `seq` (of `parts`) not yet claimed, or -1 when every part is. */
static int claim(uint64_t seq, int parts) {
    uint64_t c = atomic_load_explicit(&g_claim, memory_order_acquire);
    for (;;) {
        if ((c >> 8) != seq || (int)(c & 0xff) >= parts) return -1;
        if (atomic_compare_exchange_weak_explicit(&g_claim, &c, c + 1, memory_order_acq_rel, memory_order_acquire))
            return (int)(c & 0xff);
    }
}

static void *helper(void *arg) {
    const int index = (int)(intptr_t)arg;
    uint64_t seen = g_first_seen[index]; /* the job before the one it was made for */
    for (;;) {
        const uint64_t job = wait_job(seen);
        if (job == 0) return NULL;
        seen = job;
        const int parts = (int)(job & 0x7f);
        if (index + 1 >= parts) continue;
        /* The job's fields are read only after a claim succeeded: the caller cannot return (nor
           publish another job) before a claimed part is done. */
        for (int part; (part = claim(job >> 8, parts)) >= 0;) {
            g_fn(g_base + g_size * (size_t)part);
            if (atomic_fetch_add_explicit(&g_done, 1, memory_order_acq_rel) + 1 == parts) {
                pthread_mutex_lock(&g_done_mu); /* the last part: wake the owner if it sleeps */
                pthread_cond_signal(&g_done_cv);
                pthread_mutex_unlock(&g_done_mu);
            }
        }
    }
}

/* fork: no job may be in flight; the child starts with no helpers. */
static void before_fork(void) { pthread_mutex_lock(&g_owner); }
static void after_fork_parent(void) { pthread_mutex_unlock(&g_owner); }
static void after_fork_child(void) {
    g_nhelpers = 0;
    atomic_store(&g_done, 0);
    pthread_mutex_init(&g_sleep_mu, NULL);
    pthread_cond_init(&g_sleep_cv, NULL);
    pthread_mutex_init(&g_done_mu, NULL);
    pthread_cond_init(&g_done_cv, NULL);
    pthread_mutex_unlock(&g_owner);
}
static void start(void) {
    g_cpus = nwk_cpu_count();
    pthread_atfork(before_fork, after_fork_parent, after_fork_child);
}

__attribute__((destructor)) static void stop_helpers(void) {
    pthread_mutex_lock(&g_owner);
    pthread_mutex_lock(&g_sleep_mu);
    atomic_store(&g_quit, 1);
    pthread_cond_broadcast(&g_sleep_cv);
    pthread_mutex_unlock(&g_sleep_mu);
    for (int h = 0; h < g_nhelpers; h++) pthread_join(g_helpers[h], NULL);
    g_nhelpers = 0;
    pthread_mutex_unlock(&g_owner);
}

/* Threads made for this call only: a part whose thread cannot start runs here. */
static void run_with_new_threads(void *(*fn)(void *), char *base, size_t size, int nt) {
    pthread_t tid[NWK_MAX_THREADS];
    int started[NWK_MAX_THREADS] = {0};
    for (int t = 1; t < nt; t++) {
        started[t] = pthread_create(&tid[t], NULL, fn, base + size * (size_t)t) == 0;
        if (!started[t]) fn(base + size * (size_t)t);
    }
    fn(base);
    for (int t = 1; t < nt; t++)
        if (started[t]) pthread_join(tid[t], NULL);
}

void nwk_run_parts(void *(*fn)(void *), void *arg, size_t size, int nt) {
    char *base = arg;
    if (nt <= 1) { fn(base); return; }
    pthread_once(&g_once, start);
    if (atomic_load(&g_quit) || pthread_mutex_trylock(&g_owner) != 0) {
        run_with_new_threads(fn, base, size, nt);
        return;
    }
    for (; g_nhelpers < nt - 1; g_nhelpers++) {
        g_first_seen[g_nhelpers] = atomic_load_explicit(&g_job, memory_order_relaxed);
        if (pthread_create(&g_helpers[g_nhelpers], NULL, helper, (void *)(intptr_t)g_nhelpers) != 0) break;
    }
    const int pooled = nt - 1 < g_nhelpers ? nt : g_nhelpers + 1; /* threads on the job, us included */
    g_fn = fn;
    g_base = base;
    g_size = size;
    atomic_store_explicit(&g_done, 0, memory_order_relaxed);
    const uint64_t seq = (atomic_load_explicit(&g_job, memory_order_relaxed) >> 8) + 1;
    atomic_store_explicit(&g_claim, seq << 8 | 1, memory_order_release); /* part 0 is ours */
    const uint64_t spin = pooled <= g_cpus;
    const uint64_t job = seq << 8 | spin << 7 | (uint64_t)nt;
    pthread_mutex_lock(&g_sleep_mu);
    atomic_store_explicit(&g_job, job, memory_order_release);
    pthread_cond_broadcast(&g_sleep_cv);
    pthread_mutex_unlock(&g_sleep_mu);
    fn(base);
    int ours = 1;
    for (int part; (part = claim(seq, nt)) >= 0; ours++) fn(base + size * (size_t)part);
    /* Every part is claimed; wait for those helpers run: spin a little (they usually finish
       together with us), then sleep, so that a helper sharing our CPU with other threads (a BLAS
       library's spinning workers) gets it. */
    if (atomic_fetch_add_explicit(&g_done, ours, memory_order_acq_rel) + ours < nt) {
        for (int i = 0; i < 2048 && atomic_load_explicit(&g_done, memory_order_acquire) < nt; i++) relax();
        if (atomic_load_explicit(&g_done, memory_order_acquire) < nt) {
            pthread_mutex_lock(&g_done_mu);
            while (atomic_load_explicit(&g_done, memory_order_acquire) < nt) pthread_cond_wait(&g_done_cv, &g_done_mu);
            pthread_mutex_unlock(&g_done_mu);
        }
    }
    pthread_mutex_unlock(&g_owner);
}

typedef struct {
    void (*fn)(void *, int);
    void *ctx;
    int lane;
} lane_part;

static void *run_lane(void *arg) {
    const lane_part *p = arg;
    p->fn(p->ctx, p->lane);
    return NULL;
}

void nwk_run_lanes(void (*fn)(void *ctx, int lane), void *ctx, int lanes) {
    lane_part parts[NWK_MAX_THREADS];
    if (lanes > NWK_MAX_THREADS) lanes = NWK_MAX_THREADS;
    for (int t = 0; t < lanes; t++) parts[t] = (lane_part){fn, ctx, t};
    nwk_run_parts(run_lane, parts, sizeof parts[0], lanes < 1 ? 1 : lanes);
}
