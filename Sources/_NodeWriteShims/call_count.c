#include "nodewrite_shims.h"

/* Calls of nw_ functions made on this thread (nw_thread_call_count excepted). */
static _Thread_local uint64_t calls;

void _nw_count_call(void) { calls++; }

uint64_t _nw_call_count(void) { return calls; }
