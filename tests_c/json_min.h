/* json_min.h — a minimal JSON reader for the C tests (test code, header-only): parses a
 * whole document into a tree of nodes; objects keep their keys in order. No escapes beyond
 * \" and \\ are decoded (the fixture manifests use none). */
#ifndef NODEWRITE_JSON_MIN_H
#define NODEWRITE_JSON_MIN_H

#include <stdlib.h>
#include <string.h>

typedef enum { JM_NULL, JM_BOOL, JM_NUMBER, JM_STRING, JM_ARRAY, JM_OBJECT } jm_kind;

typedef struct jm_node {
    jm_kind kind;
    double number;          /* JM_NUMBER, JM_BOOL (0/1) */
    char *string;           /* JM_STRING */
    int count;              /* JM_ARRAY, JM_OBJECT */
    char **keys;            /* JM_OBJECT */
    struct jm_node **items; /* JM_ARRAY, JM_OBJECT */
} jm_node;

static const char *jm_ws(const char *p) {
    while (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t') p++;
    return p;
}

static jm_node *jm_parse_value(const char **pp);

static char *jm_parse_string(const char **pp) {
    const char *p = *pp + 1;
    size_t cap = 16, n = 0;
    char *s = malloc(cap);
    while (*p && *p != '"') {
        char c = *p++;
        if (c == '\\' && *p) c = *p++;
        if (n + 2 > cap) s = realloc(s, cap *= 2);
        s[n++] = c;
    }
    s[n] = '\0';
    *pp = *p ? p + 1 : p;
    return s;
}

static void jm_push(jm_node *n, char *key, jm_node *item) {
    n->items = realloc(n->items, sizeof *n->items * (size_t)(n->count + 1));
    if (n->kind == JM_OBJECT) n->keys = realloc(n->keys, sizeof *n->keys * (size_t)(n->count + 1)), n->keys[n->count] = key;
    n->items[n->count++] = item;
}

static jm_node *jm_parse_value(const char **pp) {
    const char *p = jm_ws(*pp);
    jm_node *n = calloc(1, sizeof *n);
    if (*p == '{' || *p == '[') {
        int object = *p == '{';
        n->kind = object ? JM_OBJECT : JM_ARRAY;
        p = jm_ws(p + 1);
        while (*p && *p != (object ? '}' : ']')) {
            char *key = NULL;
            if (object) {
                key = jm_parse_string(&p);
                p = jm_ws(p);
                if (*p == ':') p++;
            }
            jm_push(n, key, jm_parse_value(&p));
            p = jm_ws(p);
            if (*p == ',') p = jm_ws(p + 1);
        }
        if (*p) p++;
    } else if (*p == '"') {
        n->kind = JM_STRING;
        n->string = jm_parse_string(&p);
    } else if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
        n->kind = JM_BOOL;
        n->number = *p == 't';
        p += *p == 't' ? 4 : 5;
    } else if (!strncmp(p, "null", 4)) {
        n->kind = JM_NULL;
        p += 4;
    } else {
        char *end;
        n->kind = JM_NUMBER;
        n->number = strtod(p, &end);
        p = end > p ? end : p + 1;
    }
    *pp = p;
    return n;
}

static jm_node *jm_parse(const char *text) { return jm_parse_value(&text); }

/* The value of key in an object, or NULL. */
static const jm_node *jm_get(const jm_node *n, const char *key) {
    if (!n || n->kind != JM_OBJECT) return NULL;
    for (int i = 0; i < n->count; i++)
        if (!strcmp(n->keys[i], key)) return n->items[i];
    return NULL;
}

static const char *jm_str(const jm_node *n, const char *key) {
    const jm_node *v = jm_get(n, key);
    return v && v->kind == JM_STRING ? v->string : NULL;
}

static void jm_free(jm_node *n) {
    if (!n) return;
    for (int i = 0; i < n->count; i++) {
        jm_free(n->items[i]);
        if (n->keys) free(n->keys[i]);
    }
    free(n->items);
    free(n->keys);
    free(n->string);
    free(n);
}

#endif
