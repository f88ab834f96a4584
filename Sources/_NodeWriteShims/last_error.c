#include "nodewrite_shims.h"

#include <string.h>

static _Thread_local char last_error[1024];

void _nw_set_last_error(const char *message) {
    size_t n = message ? strlen(message) : 0;
    if (n >= sizeof last_error) n = sizeof last_error - 1;
    if (n) memcpy(last_error, message, n);
    last_error[n] = '\0';
}

const char *_nw_last_error(void) { return last_error; }
