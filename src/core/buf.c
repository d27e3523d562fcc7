/*
 * buf.c: a growable byte buffer and a bump arena, the two allocation shapes the hot paths use.
 *
 * Requests and queries allocate many small objects that all die together; the arena turns those
 * into a few large allocations freed at once.
 */
#include "core/core.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int buf_reserve(buf *b, size_t extra)
{
    if (b->len + extra <= b->cap) return 0;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra) cap *= 2;
    uint8_t *p = realloc(b->data, cap);
    if (!p) return STRATA_ENOMEM;
    b->data = p;
    b->cap = cap;
    return 0;
}

int buf_append(buf *b, const void *p, size_t n)
{
    if (buf_reserve(b, n + 1)) return STRATA_ENOMEM;
    if (n) memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = 0; /* always NUL-terminated, so text buffers can be used as strings */
    return 0;
}

int buf_putc(buf *b, char c)
{
    return buf_append(b, &c, 1);
}

int buf_printf(buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char tmp[256];
    int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (n < 0) return STRATA_EINVAL;
    if ((size_t)n < sizeof tmp) return buf_append(b, tmp, (size_t)n);
    if (buf_reserve(b, (size_t)n + 1)) return STRATA_ENOMEM;
    va_start(ap, fmt);
    vsnprintf((char *)b->data + b->len, (size_t)n + 1, fmt, ap);
    va_end(ap);
    b->len += (size_t)n;
    return 0;
}

void buf_free(buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}

struct arena_block {
    arena_block *next;
    size_t used;
    size_t size;
    _Alignas(16) unsigned char data[];
};

void arena_init(arena *a, size_t block_size)
{
    a->head = NULL;
    a->block_size = block_size ? block_size : 64 * 1024;
    a->total = 0;
}

void *arena_alloc(arena *a, size_t size)
{
    size = (size + 15) & ~(size_t)15;
    arena_block *b = a->head;
    if (!b || b->size - b->used < size) {
        size_t bs = size > a->block_size ? size : a->block_size;
        b = malloc(sizeof *b + bs);
        if (!b) return NULL;
        b->next = a->head;
        b->used = 0;
        b->size = bs;
        a->head = b;
        a->total += bs;
    }
    void *p = b->data + b->used;
    b->used += size;
    return p;
}

char *arena_strndup(arena *a, const char *s, size_t n)
{
    char *p = arena_alloc(a, n + 1);
    if (!p) return NULL;
    memcpy(p, s, n);
    p[n] = '\0';
    return p;
}

void arena_reset(arena *a)
{
    if (!a->head) return;
    /* Keep the newest block if it is the standard size, so a reused arena rarely mallocs. */
    arena_block *keep = a->head;
    arena_block *b = keep->next;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    if (keep->size != a->block_size) {
        free(keep);
        a->head = NULL;
        a->total = 0;
        return;
    }
    keep->next = NULL;
    keep->used = 0;
    a->total = keep->size;
}

void arena_free(arena *a)
{
    arena_block *b = a->head;
    while (b) {
        arena_block *n = b->next;
        free(b);
        b = n;
    }
    a->head = NULL;
    a->total = 0;
}

void arena_adopt(arena *dst, arena *src)
{
    if (!src->head) return;
    /* Append src's blocks behind dst's newest one, so dst keeps allocating where it was. */
    arena_block *last = src->head;
    while (last->next) last = last->next;
    if (dst->head) {
        last->next = dst->head->next;
        dst->head->next = src->head;
    } else {
        dst->head = src->head;
    }
    dst->total += src->total;
    src->head = NULL;
    src->total = 0;
}
