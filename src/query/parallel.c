/*
 * parallel.c: evaluation across series on several cores.
 *
 * A selector's series are split into contiguous ranges, one per worker thread; each worker decodes
 * its series (series_set_read is safe from many threads) and builds its output series in its own
 * arena with its own context, so workers share nothing but the sample counter and the deadline.
 * Joining concatenates the outputs in range order, which keeps the series order of a sequential
 * run, and hands the workers' arenas to the query's arena.
 *
 * Range functions over few series (below PARALLEL_MIN_SERIES) and many steps are split by steps
 * instead (eval_parallel_windows): each worker reads every series and evaluates its own run of
 * steps, and the runs are joined per series. Reading is repeated per worker, so this pays only
 * where the windows are long against the step (each sample is then visited by many windows), from
 * PARALLEL_MIN_STEPS steps per worker: measured, quantile_over_time over 1 h windows at 60 s cost
 * the same CPU split or not, while rate over 5 m windows and a plain selector took twice the CPU
 * split, so those stay on one pass.
 */
#include "query/eval.h"
#include "query/hist_eval.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define PARALLEL_MIN_SERIES 512 /* below this, threads cost more than they save */
#define PARALLEL_MIN_STEPS 512  /* steps per worker when few series are split by steps */
#define PARALLEL_MIN_WINDOW_STEPS 16 /* ... and only when each window spans this many steps */
#define PARALLEL_MAX_WORKERS 16

static const strata_sample no_samples[1];

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
    /* a series' histogram samples live only through its callback */
    arena hmem;
    arena_init(&hmem, 64 * 1024);
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
        if ((rc = eval_read_histograms_in(c, &hmem, set, i, &hs, &nh)) < 0) break;
        c->cur_hists = hs;
        c->cur_n_hists = nh;
        /* a series of histograms only still gets a (never read) sample array to index */
        if (ns || nh) rc = fn(c, arg, ls, nl, ns ? samples : no_samples, ns, out, cap);
        c->cur_hists = NULL;
        c->cur_n_hists = 0;
        arena_reset(&hmem);
    }
    arena_free(&hmem);
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

/* ---- across steps -----------------------------------------------------------------------------
 */

/* A worker of the step split: every series, over its own run of steps. */
typedef struct step_worker {
    eval_ctx ctx;
    arena mem;
    char err[STRATA_ERRMSG_SIZE];
    _Atomic uint64_t samples; /* its own count: every worker reads the same samples */
    series_set *set;
    size_t n, step_lo;
    series_fn fn;
    void *arg;
    value out;
    size_t cap;
    size_t *out_of; /* per input series: its output series, SIZE_MAX for none */
    int rc;
} step_worker;

static void *step_worker_main(void *p)
{
    step_worker *w = p;
    strata_sample *samples = NULL;
    size_t scap = 0;
    arena hmem; /* a series' histogram samples live only through its callback */
    arena_init(&hmem, 64 * 1024);
    for (size_t i = 0; i < w->n && !w->rc; i++) {
        const label *ls;
        size_t nl, ns, nh = 0;
        hist_sample *hs = NULL;
        w->out_of[i] = SIZE_MAX;
        int has = series_set_read(w->set, i, &ls, &nl, &samples, &scap, &ns);
        if (has < 0) {
            w->rc = has;
            break;
        }
        if (!has) ns = 0;
        if ((w->rc = eval_read_histograms_in(&w->ctx, &hmem, w->set, i, &hs, &nh)) < 0) break;
        if (!ns && !nh) continue;
        size_t before = w->out.n;
        w->ctx.cur_hists = hs;
        w->ctx.cur_n_hists = nh;
        w->rc = w->fn(&w->ctx, w->arg, ls, nl, ns ? samples : no_samples, ns, &w->out, &w->cap);
        w->ctx.cur_hists = NULL;
        w->ctx.cur_n_hists = 0;
        arena_reset(&hmem);
        if (w->out.n > before) w->out_of[i] = before;
    }
    arena_free(&hmem);
    free(samples);
    return NULL;
}

/* How many workers the steps are split over: each takes at least PARALLEL_MIN_STEPS steps. */
static size_t step_worker_count(const eval_ctx *c)
{
    long cpus = sysconf(_SC_NPROCESSORS_ONLN);
    size_t w = cpus > 0 ? (size_t)cpus : 1;
    if (w > PARALLEL_MAX_WORKERS) w = PARALLEL_MAX_WORKERS;
    size_t by_steps = c->n_steps / PARALLEL_MIN_STEPS;
    return w < by_steps ? w : by_steps;
}

/* Few series over many steps: each worker reads every series (decoding is repeated, which is why
 * this needs long queries) and evaluates its own run of steps; the runs are then put side by
 * side per input series, so the output is what one sequential pass gives. */
static int eval_parallel_steps(eval_ctx *c, series_set *set, series_fn fn, void *arg, value *out,
                               size_t nw)
{
    size_t n = series_set_count(set);
    step_worker *ws = calloc(nw, sizeof *ws);
    if (!ws) return strata_errf(c->err, STRATA_ENOMEM, "out of memory");
    pthread_t tids[PARALLEL_MAX_WORKERS];
    bool started[PARALLEL_MAX_WORKERS] = {0};
    uint64_t counted = atomic_load(c->samples);
    int rc = 0;
    for (size_t k = 0; k < nw; k++) {
        step_worker *w = &ws[k];
        size_t lo = c->n_steps * k / nw, hi = c->n_steps * (k + 1) / nw;
        arena_init(&w->mem, 64 * 1024);
        w->ctx = *c;
        w->ctx.mem = &w->mem;
        w->ctx.err = w->err;
        w->ctx.start = step_time(c, lo);
        w->ctx.end = step_time(c, hi - 1);
        w->ctx.n_steps = hi - lo;
        atomic_init(&w->samples, counted);
        w->ctx.samples = &w->samples;
        w->set = set;
        w->n = n;
        w->step_lo = lo;
        w->fn = fn;
        w->arg = arg;
        w->out.type = V_VECTOR;
        w->out_of = malloc((n + 1) * sizeof *w->out_of);
        if (!w->out_of) {
            rc = STRATA_ENOMEM;
            continue;
        }
        started[k] = pthread_create(&tids[k], NULL, step_worker_main, w) == 0;
        if (!started[k]) step_worker_main(w);
    }
    for (size_t k = 0; k < nw; k++) {
        if (started[k]) pthread_join(tids[k], NULL);
        if (ws[k].rc && !rc) {
            rc = ws[k].rc;
            if (c->err) memcpy(c->err, ws[k].err, STRATA_ERRMSG_SIZE);
        }
    }
    /* Every worker read the same samples: count them once. */
    if (!rc) rc = eval_count_samples(c, (size_t)(atomic_load(&ws[0].samples) - counted));
    size_t cap = out->n;
    for (size_t i = 0; i < n && !rc; i++) {
        vseries *os = NULL;
        for (size_t k = 0; k < nw && !rc; k++) {
            if (ws[k].out_of[i] == SIZE_MAX) continue;
            const vseries *ps = &ws[k].out.s[ws[k].out_of[i]];
            if (!os && !(os = vec_add(c, out, &cap, ps->labels, ps->n_labels))) {
                rc = STRATA_ENOMEM;
                break;
            }
            os->drop_name = ps->drop_name;
            memcpy(os->v + ws[k].step_lo, ps->v, ws[k].ctx.n_steps * sizeof *os->v);
            memcpy(os->has + ws[k].step_lo, ps->has, ws[k].ctx.n_steps);
            for (size_t j = 0; ps->h && j < ws[k].ctx.n_steps && !rc; j++)
                if (ps->h[j]) rc = vec_set_hist(c, os, ws[k].step_lo + j, ps->h[j]);
        }
    }
    for (size_t k = 0; k < nw; k++) {
        arena_adopt(c->mem, &ws[k].mem);
        free(ws[k].out_of);
    }
    free(ws);
    return rc;
}

int eval_parallel_windows(eval_ctx *c, series_set *set, series_fn fn, void *arg, value *out,
                          int64_t window_ms)
{
    size_t n = series_set_count(set);
    /* Each sample is read once per worker but visited by window/step windows: only windows many
     * steps long outweigh the repeated reading. */
    bool long_windows = window_ms >= PARALLEL_MIN_WINDOW_STEPS * c->step;
    if (n > 0 && n < PARALLEL_MIN_SERIES && long_windows && !c->o->sequential_steps) {
        size_t sw = step_worker_count(c);
        if (sw > 1) return eval_parallel_steps(c, set, fn, arg, out, sw);
    }
    return eval_parallel_series(c, set, fn, arg, out);
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
