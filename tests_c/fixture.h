/* fixture.h — reads the parity fixtures (tdb_tiny.safetensors + tdb_tiny.json) in
 * plain C for the C tests, the demo and the benchmarks. Header-only; test code. */
#ifndef NODEWRITE_FIXTURE_H
#define NODEWRITE_FIXTURE_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct fx_safetensors {
    char *bytes;        /* the whole file */
    size_t size;
    const char *header; /* JSON header (NUL-terminated copy) */
    const char *data;   /* start of the data section */
} fx_safetensors;

typedef struct fx_tensor {
    const float *data; /* F32, row-major */
    int ndim;
    int64_t shape[4];
    int64_t count;
} fx_tensor;

typedef struct fx_case {
    char id[16], node_type[48], autoencoders[16], expected[32], error[32];
    int layer, n_indices;
    int64_t indices[4];
} fx_case;

static char *fx_read_file(const char *path, size_t *size) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    fseek(f, 0, SEEK_END);
    long n = ftell(f);
    fseek(f, 0, SEEK_SET);
    char *buf = malloc((size_t)n + 1);
    if (buf && fread(buf, 1, (size_t)n, f) != (size_t)n) { free(buf); buf = NULL; }
    fclose(f);
    if (buf) { buf[n] = '\0'; *size = (size_t)n; }
    return buf;
}

static int fx_open(fx_safetensors *st, const char *path) {
    memset(st, 0, sizeof *st);
    st->bytes = fx_read_file(path, &st->size);
    if (!st->bytes || st->size < 8) return -1;
    uint64_t n = 0;
    for (int i = 7; i >= 0; i--) n = (n << 8) | (unsigned char)st->bytes[i];
    if (n > st->size - 8) return -1;
    char *header = malloc(n + 1);
    memcpy(header, st->bytes + 8, n);
    header[n] = '\0';
    st->header = header;
    st->data = st->bytes + 8 + n;
    return 0;
}

static void fx_close(fx_safetensors *st) {
    free(st->bytes);
    free((void *)st->header);
}

/* Parses "[a, b, ...]" starting at p; returns the count (at most max). */
static int fx_int_list(const char *p, int64_t *out, int max) {
    p = strchr(p, '[');
    int n = 0;
    if (!p) return 0;
    p++;
    while (*p && *p != ']') {
        char *end;
        long long v = strtoll(p, &end, 10);
        if (end == p) { p++; continue; }
        if (n < max) out[n] = v;
        n++;
        p = end;
    }
    return n < max ? n : max;
}

/* The F32 tensor called name; returns 0 on success. */
static int fx_tensor_get(const fx_safetensors *st, const char *name, fx_tensor *t) {
    char key[256];
    snprintf(key, sizeof key, "\"%s\":", name);
    const char *p = strstr(st->header, key);
    if (!p) return -1;
    const char *end = strchr(p, '}');
    const char *shape = strstr(p, "\"shape\"");
    const char *offsets = strstr(p, "\"data_offsets\"");
    if (!shape || !offsets || shape > end || offsets > end) return -1;
    memset(t, 0, sizeof *t);
    t->ndim = fx_int_list(shape, t->shape, 4);
    int64_t range[2] = {0, 0};
    fx_int_list(offsets, range, 2);
    t->count = 1;
    for (int i = 0; i < t->ndim; i++) t->count *= t->shape[i];
    t->data = (const float *)(const void *)(st->data + range[0]);
    return 0;
}

/* Copies the string value of "key" in [obj, obj_end) into out. */
static void fx_string_field(const char *obj, const char *obj_end, const char *key, char *out, size_t cap) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\":", key);
    out[0] = '\0';
    const char *p = strstr(obj, k);
    if (!p || p > obj_end) return;
    p = strchr(p + strlen(k), '"');
    if (!p) return;
    const char *q = strchr(++p, '"');
    size_t n = (size_t)(q - p) < cap - 1 ? (size_t)(q - p) : cap - 1;
    memcpy(out, p, n);
    out[n] = '\0';
}

/* Reads every case of tdb_tiny.json; returns the count, *cases malloc'ed. */
static int fx_cases(const char *path, fx_case **cases) {
    size_t size;
    char *json = fx_read_file(path, &size);
    if (!json) return -1;
    const char *p = strstr(json, "\"cases\"");
    int n = 0, cap = 0;
    *cases = NULL;
    while (p && (p = strchr(p, '{')) != NULL) {
        int depth = 0;
        const char *e = p;
        do {
            if (*e == '{') depth++;
            if (*e == '}') depth--;
            e++;
        } while (depth > 0 && *e);
        if (n == cap) { cap = cap ? cap * 2 : 64; *cases = realloc(*cases, (size_t)cap * sizeof **cases); }
        fx_case *c = &(*cases)[n++];
        memset(c, 0, sizeof *c);
        fx_string_field(p, e, "id", c->id, sizeof c->id);
        fx_string_field(p, e, "node_type", c->node_type, sizeof c->node_type);
        fx_string_field(p, e, "autoencoders", c->autoencoders, sizeof c->autoencoders);
        fx_string_field(p, e, "expected", c->expected, sizeof c->expected);
        fx_string_field(p, e, "error", c->error, sizeof c->error);
        const char *l = strstr(p, "\"layer\":");
        c->layer = l && l < e ? atoi(l + 8) : -1;
        const char *ti = strstr(p, "\"tensor_indices\":");
        c->n_indices = ti && ti < e ? fx_int_list(ti, c->indices, 4) : 0;
        p = e;
    }
    free(json);
    return n;
}

#endif
