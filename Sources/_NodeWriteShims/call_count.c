#include "nodewrite_shims.h"

/* Calls of nw_ functions made on this thread (nw_thread_call_count excepted). The default TLS
 * model (a __tls_get_addr call per export, about 20 instructions): initial-exec would take 7,
 * but needs static TLS space, which a dlopen after torch's libraries may not find. */
static _Thread_local uint64_t calls;

void _nw_count_call(void) { calls++; }

uint64_t _nw_call_count(void) { return calls; }
