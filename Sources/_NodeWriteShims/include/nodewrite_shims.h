/* Implementation-only helpers of libnodewrite; not public API. */
#ifndef NODEWRITE_SHIMS_H
#define NODEWRITE_SHIMS_H

/* Copies message (truncated to fit) into this thread's last-error buffer. */
void _nw_set_last_error(const char *message);

/* This thread's last-error buffer: "" until a failure; never NULL. */
const char *_nw_last_error(void);

#endif
