/*
 * parallel.c: evaluation across series on several cores.
 *
 * A selector's series are split into contiguous ranges, one per worker thread; each worker decodes
 * its series (series_set_read is safe from many threads) and builds its output series in its own
 * arena with its own context, so workers share nothing but the sample counter and the deadline.
 * Joining concatenates the outputs in range order, which keeps the series order of a sequential
 * run, and hands the workers' arenas to the query's arena.
 */
#include "query/eval.h"
#include "query/hist_eval.h"

#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARALLEL_MIN_SERIES 512 /* below this, threads cost more than they save */
#define PARALLEL_MAX_WORKERS 16

typedef struct worker {
    eval_ctx ctx;
    arena mem;
    char err[STRATA_ERRMSG_SIZE];
    series_set *set;
    size_t lo, hi;
    series_fn fn;
    void *arg;
    value out;
    size_t cap;
    int rc;
} worker;

static int run_range(eval_ctx *c, series_set *set, size_t lo, size_t hi, series_fn fn, void *arg,
                     value *out, size_t *cap)
{
    strata_sample *samples = NULL;
    size_t scap = 0;
    int rc = 0;
    for (size_t i = lo; i < hi && !rc; i++) {
        const label *ls;
        size_t nl, ns, nh = 0;
        hist_sample *hs = NULL;
        int has = series_set_read(set, i, &ls, &nl, &samples, &scap, &ns);
        if (has < 0) {
            rc = has;
            break;
        }
        if (!has) ns = 0;
        if ((rc = eval_read_histograms(c, set, i, &hs, &nh)) < 0) break;
        c->cur_hists = hs;
        c->cur_n_hists = nh;
        if (ns || nh) rc = fn(c, arg, ls, nl, samples, ns, out, cap);
        c->cur_hists = NULL;
        c->cur_n_hists = 0;
    }
    free(samples);
    return rc;
}

static void *worker_main(void *p)
{
    worker *w = p;
    w->rc = run_range(&w->ctx, w->set, w->lo, w->hi, w->fn, w->arg, &w->out, &w->cap);
    return NULL;
}

static size_t worker_count(size_t n)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t w = cpus > 0 ? (size_t)cpus : 1;
    if (w > PARALLEL_MAX_WORKERS) w = PARALLEL_MAX_WORKERS;
    size_t by_size = n / (PARALLEL_MIN_SERIES / 2);
    if (w > by_size) w = by_size;
    return w ? w : 1;
}

int eval_parallel_series(eval_ctx *c, series_set *set, series_fn fn, void *arg, value *out)
{
    size_t n = series_set_count(set);
    size_t cap = out->n; /* out may already hold series: vec_add grows from there */
    size_t nw = n >= PARALLEL_MIN_SERIES ? worker_count(n) : 1;
    if (nw <= 1) return run_range(c, set, 0, n, fn, arg, out, &cap);

    worker *ws = calloc(nw, sizeof *ws);
    if (!ws) return strata_errf(c->err, STRATA_ENOMEM, "out of memory");
    pthread_t tids[PARALLEL_MAX_WORKERS];
    bool started[PARALLEL_MAX_WORKERS] = {0};
    for (size_t k = 0; k < nw; k++) {
        worker *w = &ws[k];
        arena_init(&w->mem, 64 * 1024);
        w->ctx = *c;
        w->ctx.mem = &w->mem;
        w->ctx.err = w->err;
        w->set = set;
        w->lo = n * k / nw;
        w->hi = n * (k + 1) / nw;
        w->fn = fn;
        w->arg = arg;
        w->out.type = V_VECTOR;
        started[k] = pthread_create(&tids[k], NULL, worker_main, w) == 0;
        if (!started[k]) worker_main(w); /* no thread: do the range here */
    }
    int rc = 0;
    size_t total = out->n;
    for (size_t k = 0; k < nw; k++) {
        if (started[k]) pthread_join(tids[k], NULL);
        if (ws[k].rc && !rc) {
            rc = ws[k].rc;
            if (c->err) memcpy(c->err, ws[k].err, STRATA_ERRMSG_SIZE);
        }
        total += ws[k].out.n;
    }
    if (!rc && total > out->n) {
        vseries *all = eval_alloc(c, total * sizeof *all);
        if (!all) {
            rc = STRATA_ENOMEM;
        } else {
            size_t o = 0;
            if (out->n) memcpy(all, out->s, out->n * sizeof *all);
            o = out->n;
            for (size_t k = 0; k < nw; k++) {
                if (ws[k].out.n) memcpy(all + o, ws[k].out.s, ws[k].out.n * sizeof *all);
                o += ws[k].out.n;
            }
            out->s = all;
            out->n = total;
        }
    }
    for (size_t k = 0; k < nw; k++) arena_adopt(c->mem, &ws[k].mem);
    free(ws);
    return rc;
}
