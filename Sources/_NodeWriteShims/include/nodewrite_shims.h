/* Implementation-only helpers of libnodewrite; not public API. */
#ifndef NODEWRITE_SHIMS_H
#define NODEWRITE_SHIMS_H

#include <stdint.h>

/* Copies message (truncated to fit) into this thread's last-error buffer. */
void _nw_set_last_error(const char *message);

/* This thread's last-error buffer: "" until a failure; never NULL. */
const char *_nw_last_error(void);

/* Counts one call of an nw_ function on this thread (every export calls it once). */
void _nw_count_call(void);

/* This thread's count (nw_thread_call_count). */
uint64_t _nw_call_count(void);

#endif
