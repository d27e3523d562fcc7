/*
 * wal.c: the write-ahead log. Every sample is in the WAL before its write is acknowledged, and
 * the head is rebuilt from it on open.
 *
 * Layout: <data>/wal/ holds segment files named by an 8-digit sequence number, each at most
 * wal_segment_bytes. A segment is a sequence of records:
 *
 *     type u8 | length u32 LE | crc32c u32 LE (over type and payload) | payload[length]
 *
 * Records never span segments, so a segment can be read, checked and dropped on its own. A crash
 * can leave a record half written at the end of the newest segment: replay stops at the first
 * record whose header or checksum does not hold, truncates the segment there, logs it and goes
 * on, because those bytes were never acknowledged. After replay writing starts in a new segment.
 *
 * Durability (strata_fsync_policy): ALWAYS makes each writer wait until an fdatasync covers its
 * bytes; writers arriving during an fsync share the next one (group commit). INTERVAL is group
 * commit on a clock: a background thread fsyncs every interval and writers wait for the fsync
 * that covers them, trading up to one interval of latency for far fewer fsyncs. NONE leaves it
 * to the kernel (a process crash loses nothing; a power loss may).
 */
#include "storage/storage_internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define WAL_HEADER 9
#define WAL_MAX_RECORD (256u << 20)

struct wal {
    char *dir;
    strata_fsync_policy policy;
    uint32_t interval_ms;
    uint64_t segment_bytes;
    int fd;
    uint32_t segment;
    uint64_t segment_off;
    _Atomic uint64_t written; /* bytes appended since open: WAL positions */
    pthread_mutex_t sync_mu;
    pthread_cond_t synced_cv; /* broadcast after every fsync, for INTERVAL waiters */
    uint64_t synced;
    pthread_t syncer;
    bool syncer_running;
    pthread_mutex_t stop_mu;
    pthread_cond_t stop_cv;
    bool stopping;
    _Atomic uint64_t segments;
    _Atomic uint64_t bytes;
    _Atomic uint64_t fsyncs;
    uint64_t records_replayed;
    uint64_t torn_tails;
    _Atomic bool failed; /* a write or fsync failed: the log's tail is uncertain, so refuse further writes */
};

int wal_frame(buf *b, uint8_t type, const uint8_t *payload, size_t len)
{
    if (buf_reserve(b, WAL_HEADER + len + 1)) return STRATA_ENOMEM;
    uint8_t *h = b->data + b->len;
    h[0] = type;
    uint32_t l = (uint32_t)len;
    memcpy(h + 1, &l, 4); /* little-endian hosts only: x86-64 and aarch64 */
    uint32_t crc = crc32c(0, &type, 1);
    crc = crc32c(crc, payload, len);
    memcpy(h + 5, &crc, 4);
    memcpy(h + WAL_HEADER, payload, len);
    b->len += WAL_HEADER + len;
    return 0;
}

static int segment_path(const wal *w, uint32_t seq, char *out, size_t len)
{
    return snprintf(out, len, "%s/%08u", w->dir, seq);
}

static int fsync_dir(const char *dir)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY);
    if (fd < 0) return STRATA_EIO;
    int rc = fsync(fd) ? STRATA_EIO : 0;
    close(fd);
    return rc;
}

static int open_segment(wal *w, uint32_t seq, char *err)
{
    char path[4096];
    segment_path(w, seq, path, sizeof path);
    int fd = open(path, O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0)
        return strata_errf(err, STRATA_EIO, "wal: cannot create segment %s: %s", path,
                           strerror(errno));
    /* The new name must survive a crash, or acknowledged records in it could vanish with it. */
    if (w->policy != STRATA_FSYNC_NONE && fsync_dir(w->dir)) {
        close(fd);
        return strata_errf(err, STRATA_EIO, "wal: cannot fsync %s: %s", w->dir, strerror(errno));
    }
    w->fd = fd;
    w->segment = seq;
    w->segment_off = 0;
    atomic_fetch_add(&w->segments, 1);
    return 0;
}

static int list_segments(const char *dir, uint32_t **out, size_t *n)
{
    DIR *d = opendir(dir);
    if (!d) return STRATA_EIO;
    uint32_t *v = NULL;
    size_t k = 0, cap = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        const char *s = e->d_name;
        if (strlen(s) != 8 || strspn(s, "0123456789") != 8) continue;
        if (k == cap) {
            cap = cap ? cap * 2 : 16;
            uint32_t *nv = realloc(v, cap * sizeof *v);
            if (!nv) {
                free(v);
                closedir(d);
                return STRATA_ENOMEM;
            }
            v = nv;
        }
        v[k++] = (uint32_t)strtoul(s, NULL, 10);
    }
    closedir(d);
    for (size_t i = 1; i < k; i++) /* insertion sort: segment counts are small */
        for (size_t j = i; j > 0 && v[j - 1] > v[j]; j--) {
            uint32_t t = v[j];
            v[j] = v[j - 1];
            v[j - 1] = t;
        }
    *out = v;
    *n = k;
    return 0;
}

static int get_uvarint(const uint8_t **p, const uint8_t *end, uint64_t *v)
{
    uint64_t x = 0;
    for (int shift = 0; shift < 64; shift += 7) {
        if (*p >= end) return -1;
        uint8_t b = *(*p)++;
        x |= (uint64_t)(b & 0x7f) << shift;
        if (!(b & 0x80)) {
            *v = x;
            return 0;
        }
    }
    return -1;
}

static int get_varint(const uint8_t **p, const uint8_t *end, int64_t *v)
{
    uint64_t u;
    if (get_uvarint(p, end, &u)) return -1;
    *v = (int64_t)(u >> 1) ^ -(int64_t)(u & 1);
    return 0;
}

static int replay_series(const uint8_t *p, const uint8_t *end, const wal_replay_handlers *h,
                         char *err)
{
    label stack[64];
    while (p < end) {
        uint64_t ref, n;
        if (get_uvarint(&p, end, &ref) || get_uvarint(&p, end, &n) || n == 0 || n > 1u << 16 ||
            ref == 0 || ref > UINT32_MAX)
            return strata_errf(err, STRATA_ECORRUPT, "malformed series record");
        label *v = n <= 64 ? stack : malloc(n * sizeof *v);
        if (!v) return STRATA_ENOMEM;
        for (uint64_t i = 0; i < n; i++) {
            uint64_t nl, vl;
            if (get_uvarint(&p, end, &nl) || (uint64_t)(end - p) < nl) goto bad;
            v[i].name = (const char *)p;
            v[i].name_len = (uint32_t)nl;
            p += nl;
            if (get_uvarint(&p, end, &vl) || (uint64_t)(end - p) < vl) goto bad;
            v[i].value = (const char *)p;
            v[i].value_len = (uint32_t)vl;
            p += vl;
        }
        int rc = h->series(h->ctx, (uint32_t)ref, v, (size_t)n, err);
        if (v != stack) free(v);
        if (rc) return rc;
        continue;
    bad:
        if (v != stack) free(v);
        return strata_errf(err, STRATA_ECORRUPT, "malformed series record");
    }
    return 0;
}

static int replay_samples(const uint8_t *p, const uint8_t *end, const wal_replay_handlers *h,
                          char *err)
{
    int64_t ref = 0, t = 0;
    bool first = true;
    while (p < end) {
        int64_t dref, dt;
        if (get_varint(&p, end, &dref) || get_varint(&p, end, &dt) || end - p < 8)
            return strata_errf(err, STRATA_ECORRUPT, "malformed samples record");
        double v;
        memcpy(&v, p, 8);
        p += 8;
        ref = first ? dref : ref + dref;
        t = first ? dt : t + dt;
        first = false;
        int rc = h->sample(h->ctx, (uint32_t)ref, t, v, err);
        if (rc) return rc;
    }
    return 0;
}

/* Replays one segment; *valid_end receives the offset after the last good record. */
static int replay_segment(wal *w, const char *path, const wal_replay_handlers *h, off_t *valid_end,
                          bool *torn, char *err)
{
    *torn = false;
    *valid_end = 0;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return strata_errf(err, STRATA_EIO, "wal: cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st)) {
        close(fd);
        return strata_errf(err, STRATA_EIO, "wal: cannot stat %s", path);
    }
    if (st.st_size == 0) {
        close(fd);
        return 0;
    }
    uint8_t *map = mmap(NULL, (size_t)st.st_size, PROT_READ, MAP_PRIVATE, fd, 0);
    close(fd);
    if (map == MAP_FAILED) return strata_errf(err, STRATA_EIO, "wal: cannot map %s", path);
    madvise(map, (size_t)st.st_size, MADV_SEQUENTIAL);
    size_t off = 0, size = (size_t)st.st_size;
    int rc = 0;
    while (off < size) {
        if (size - off < WAL_HEADER) {
            *torn = true;
            break;
        }
        uint8_t type = map[off];
        uint32_t len, crc;
        memcpy(&len, map + off + 1, 4);
        memcpy(&crc, map + off + 5, 4);
        if (len > WAL_MAX_RECORD || size - off - WAL_HEADER < len) {
            *torn = true;
            break;
        }
        const uint8_t *payload = map + off + WAL_HEADER;
        uint32_t want = crc32c(crc32c(0, &type, 1), payload, len);
        if (want != crc) {
            *torn = true;
            break;
        }
        if (type == WAL_REC_SERIES) rc = replay_series(payload, payload + len, h, err);
        else if (type == WAL_REC_SAMPLES) rc = replay_samples(payload, payload + len, h, err);
        else if (type == WAL_REC_HISTOGRAMS)
            rc = wal_replay_histograms(payload, payload + len, h, err);
        else if (type == WAL_REC_EXEMPLARS)
            rc = h->exemplars ? h->exemplars(h->ctx, payload, len, err) : 0;
        else rc = strata_errf(err, STRATA_ECORRUPT, "unknown record type %u", type);
        if (rc) {
            strata_err_prefix(err, "wal: %s at offset %zu: ", path, off);
            break;
        }
        w->records_replayed++;
        off += WAL_HEADER + len;
    }
    *valid_end = (off_t)off;
    munmap(map, size);
    return rc;
}

static int write_all(int fd, const uint8_t *p, size_t n);

/* ---- checkpoints: the series records still needed once older segments are in blocks ---- */

/* The newest complete checkpoint's number (0 if none); leftover .tmp files are removed. */
static uint32_t newest_checkpoint(const char *dir, bool read_only)
{
    DIR *d = opendir(dir);
    if (!d) return 0;
    uint32_t best = 0;
    struct dirent *e;
    while ((e = readdir(d))) {
        unsigned n;
        int used = 0;
        if (sscanf(e->d_name, "checkpoint.%8u%n", &n, &used) != 1 || used != 19) continue;
        if (e->d_name[used] == 0) {
            if (n > best) best = n;
        } else if (!read_only && strcmp(e->d_name + used, ".tmp") == 0) {
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", dir, e->d_name);
            unlink(p);
        }
    }
    closedir(d);
    return best;
}

uint32_t wal_newest_checkpoint(const char *dir)
{
    return newest_checkpoint(dir, true);
}

static int replay_checkpoint(wal *w, const wal_replay_handlers *h, bool read_only, uint32_t *num,
                             char *err)
{
    *num = newest_checkpoint(w->dir, read_only);
    if (!*num) return 0;
    char path[4200];
    snprintf(path, sizeof path, "%s/checkpoint.%08u", w->dir, *num);
    off_t end;
    bool torn;
    if (h->segment) h->segment(h->ctx, *num);
    int rc = replay_segment(w, path, h, &end, &torn, err);
    /* A checkpoint is renamed into place only when complete: damage is not a torn tail. */
    if (!rc && torn)
        rc = strata_errf(err, STRATA_ECORRUPT, "wal: checkpoint %s is damaged at offset %lld", path,
                         (long long)end);
    return rc;
}

int wal_cut(wal *w, uint32_t *next_segment, char *err)
{
    if (w->fd < 0) return strata_errf(err, STRATA_ECLOSED, "wal: not open for writing");
    pthread_mutex_lock(&w->sync_mu);
    int rc = 0;
    if (w->policy != STRATA_FSYNC_NONE && fdatasync(w->fd)) rc = STRATA_EIO;
    atomic_fetch_add(&w->fsyncs, 1);
    if (!rc) {
        close(w->fd);
        w->fd = -1;
        rc = open_segment(w, w->segment + 1, err);
        if (!rc) w->synced = atomic_load(&w->written);
        pthread_cond_broadcast(&w->synced_cv);
    }
    if (rc) atomic_store(&w->failed, true);
    pthread_mutex_unlock(&w->sync_mu);
    if (rc == STRATA_EIO) return strata_errf(err, rc, "wal: fsync failed: %s", strerror(errno));
    if (rc) return rc;
    *next_segment = w->segment;
    return 0;
}

int wal_checkpoint(wal *w, uint32_t segment, const uint8_t *records, size_t len, char *err)
{
    char tmp[4200], path[4096];
    snprintf(path, sizeof path, "%s/checkpoint.%08u", w->dir, segment);
    snprintf(tmp, sizeof tmp, "%s.tmp", path);
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) return strata_errf(err, STRATA_EIO, "wal: cannot create %s: %s", tmp, strerror(errno));
    int rc = write_all(fd, records, len) || fsync(fd) ? STRATA_EIO : 0;
    if (close(fd)) rc = STRATA_EIO;
    if (!rc && rename(tmp, path)) rc = STRATA_EIO;
    if (!rc && fsync_dir(w->dir)) rc = STRATA_EIO;
    if (rc) {
        int e = errno;
        unlink(tmp);
        return strata_errf(err, rc, "wal: cannot write checkpoint %s: %s", path, strerror(e));
    }
    /* Everything below the checkpoint is now superseded; a crash in this loop only leaves files
     * that the next replay ignores and the next checkpoint removes. */
    uint32_t *segs = NULL;
    size_t n = 0;
    if (list_segments(w->dir, &segs, &n) == 0) {
        for (size_t i = 0; i < n; i++) {
            if (segs[i] >= segment) continue;
            char p[4200];
            segment_path(w, segs[i], p, sizeof p);
            struct stat st;
            if (!stat(p, &st)) atomic_fetch_sub(&w->bytes, (uint64_t)st.st_size);
            if (!unlink(p)) atomic_fetch_sub(&w->segments, 1);
        }
        free(segs);
    }
    DIR *d = opendir(w->dir);
    struct dirent *e;
    while (d && (e = readdir(d))) {
        unsigned k;
        int used = 0;
        if (sscanf(e->d_name, "checkpoint.%8u%n", &k, &used) == 1 && used == 19 && !e->d_name[used] &&
            k < segment) {
            char p[4200];
            snprintf(p, sizeof p, "%s/%s", w->dir, e->d_name);
            unlink(p);
        }
    }
    if (d) closedir(d);
    fsync_dir(w->dir);
    return 0;
}

static void *syncer_main(void *arg)
{
    wal *w = arg;
    pthread_mutex_lock(&w->stop_mu);
    while (!w->stopping) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        uint64_t ns = (uint64_t)ts.tv_nsec + (uint64_t)w->interval_ms * 1000000ull;
        ts.tv_sec += (time_t)(ns / 1000000000ull);
        ts.tv_nsec = (long)(ns % 1000000000ull);
        pthread_cond_timedwait(&w->stop_cv, &w->stop_mu, &ts);
        if (w->stopping) break;
        pthread_mutex_unlock(&w->stop_mu);
        wal_sync_all(w, NULL);
        pthread_mutex_lock(&w->stop_mu);
    }
    pthread_mutex_unlock(&w->stop_mu);
    return NULL;
}

int wal_open(const char *dir, const strata_options *opts, const wal_replay_handlers *h, wal **out,
             char *err)
{
    wal *w = calloc(1, sizeof *w);
    if (!w) return STRATA_ENOMEM;
    w->dir = strdup(dir);
    w->fd = -1;
    w->policy = opts->fsync;
    w->interval_ms = opts->fsync_interval_ms ? opts->fsync_interval_ms : 1000;
    w->segment_bytes = opts->wal_segment_bytes ? opts->wal_segment_bytes : 128u << 20;
    pthread_mutex_init(&w->sync_mu, NULL);
    pthread_cond_init(&w->synced_cv, NULL);
    pthread_mutex_init(&w->stop_mu, NULL);
    pthread_cond_init(&w->stop_cv, NULL);
    if (!w->dir) {
        wal_close(w);
        return STRATA_ENOMEM;
    }
    if (mkdir(dir, 0755) && errno != EEXIST) {
        wal_close(w);
        return strata_errf(err, STRATA_EIO, "wal: cannot create %s: %s", dir, strerror(errno));
    }
    uint32_t *segs = NULL;
    size_t nseg = 0;
    int rc = list_segments(dir, &segs, &nseg);
    if (rc) {
        wal_close(w);
        return strata_errf(err, rc, "wal: cannot list %s", dir);
    }
    uint32_t last = 0, checkpoint = 0;
    rc = replay_checkpoint(w, h, opts->read_only, &checkpoint, err);
    if (checkpoint) last = checkpoint - 1;
    for (size_t i = 0; i < nseg && !rc; i++) {
        if (segs[i] < checkpoint) continue; /* superseded by the checkpoint and blocks */
        char path[4096];
        segment_path(w, segs[i], path, sizeof path);
        off_t end;
        bool torn;
        if (h->segment) h->segment(h->ctx, segs[i]);
        rc = replay_segment(w, path, h, &end, &torn, err);
        if (!rc && torn) {
            /* Bytes after the last whole record were never acknowledged: drop them so the
             * segment reads cleanly next time. */
            strata_log(LOG_WARN, "wal: torn record at %s offset %lld: truncating the segment there",
                       path, (long long)end);
            w->torn_tails++;
            if (!opts->read_only && truncate(path, end))
                rc = strata_errf(err, STRATA_EIO, "wal: cannot truncate %s: %s", path,
                                 strerror(errno));
        }
        last = segs[i];
        struct stat st;
        if (!stat(path, &st)) atomic_fetch_add(&w->bytes, (uint64_t)st.st_size);
        atomic_fetch_add(&w->segments, 1);
    }
    free(segs);
    if (rc) {
        wal_close(w);
        return rc;
    }
    if (!opts->read_only) {
        rc = open_segment(w, last + 1, err);
        if (rc) {
            wal_close(w);
            return rc;
        }
        if (w->policy == STRATA_FSYNC_INTERVAL) {
            if (pthread_create(&w->syncer, NULL, syncer_main, w) == 0) w->syncer_running = true;
        }
    }
    *out = w;
    return 0;
}

static int write_all(int fd, const uint8_t *p, size_t n)
{
    while (n) {
        ssize_t k = write(fd, p, n);
        if (k < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += k;
        n -= (size_t)k;
    }
    return 0;
}

int wal_write(wal *w, const uint8_t *data, size_t len, uint64_t *pos, char *err)
{
    if (w->fd < 0) return strata_errf(err, STRATA_ECLOSED, "wal: not open for writing");
    if (w->failed)
        return strata_errf(err, STRATA_EIO,
                           "wal: an earlier write failed; restart Strata to recover from the WAL");
    if (w->segment_off > 0 && w->segment_off + len > w->segment_bytes) {
        /* Rotation: the old segment is made durable first, so positions before the switch
         * never need its descriptor again. */
        pthread_mutex_lock(&w->sync_mu);
        int rc = 0;
        if (w->policy != STRATA_FSYNC_NONE) {
            if (fdatasync(w->fd)) rc = STRATA_EIO;
            atomic_fetch_add(&w->fsyncs, 1);
        }
        if (!rc) {
            close(w->fd);
            w->fd = -1;
            rc = open_segment(w, w->segment + 1, err);
            if (!rc) w->synced = atomic_load(&w->written);
            pthread_cond_broadcast(&w->synced_cv);
        }
        pthread_mutex_unlock(&w->sync_mu);
        if (rc) return rc == STRATA_EIO && err && !*err
                          ? strata_errf(err, rc, "wal: fsync failed: %s", strerror(errno))
                          : rc;
    }
    if (write_all(w->fd, data, len)) {
        int e = errno;
        /* Never leave half a record in the middle of the log: cut back to where we were. */
        if (ftruncate(w->fd, (off_t)w->segment_off)) {
        }
        w->failed = true;
        return strata_errf(err, STRATA_EIO, "wal: write failed: %s", strerror(e));
    }
    w->segment_off += len;
    atomic_fetch_add(&w->bytes, len);
    *pos = atomic_fetch_add(&w->written, len) + len;
    return 0;
}

int wal_sync_all(wal *w, char *err)
{
    pthread_mutex_lock(&w->sync_mu);
    uint64_t target = atomic_load(&w->written);
    int rc = 0;
    if (w->fd >= 0 && w->synced < target) {
        /* After a failed fsync the kernel may have dropped the dirty pages, so a retry could
         * report success for lost data: the log is failed for good (PostgreSQL's lesson). */
        if (fdatasync(w->fd) || atomic_load(&w->failed)) {
            atomic_store(&w->failed, true);
            rc = strata_errf(err, STRATA_EIO, "wal: fsync failed: %s", strerror(errno));
        } else {
            w->synced = target;
        }
        pthread_cond_broadcast(&w->synced_cv);
        atomic_fetch_add(&w->fsyncs, 1);
    }
    pthread_mutex_unlock(&w->sync_mu);
    return rc;
}

int wal_sync_to(wal *w, uint64_t pos, char *err)
{
    if (w->policy == STRATA_FSYNC_NONE) return 0;
    if (w->policy == STRATA_FSYNC_INTERVAL) {
        /* Wait for the syncer's next fsync to cover pos. */
        pthread_mutex_lock(&w->sync_mu);
        while (w->synced < pos && !atomic_load(&w->failed)) pthread_cond_wait(&w->synced_cv, &w->sync_mu);
        bool failed = w->synced < pos;
        pthread_mutex_unlock(&w->sync_mu);
        return failed ? strata_errf(err, STRATA_EIO, "wal: fsync failed") : 0;
    }
    pthread_mutex_lock(&w->sync_mu);
    bool done = w->synced >= pos;
    pthread_mutex_unlock(&w->sync_mu);
    if (done) return 0;
    /* Whoever gets sync_mu next syncs everything written so far, covering every waiter. */
    return wal_sync_all(w, err);
}

void wal_get_stats(wal *w, wal_stats *st)
{
    st->segments = atomic_load(&w->segments);
    st->bytes = atomic_load(&w->bytes);
    st->fsyncs = atomic_load(&w->fsyncs);
    st->records_replayed = w->records_replayed;
    st->torn_tails = w->torn_tails;
}

void wal_close(wal *w)
{
    if (!w) return;
    if (w->syncer_running) {
        pthread_mutex_lock(&w->stop_mu);
        w->stopping = true;
        pthread_cond_signal(&w->stop_cv);
        pthread_mutex_unlock(&w->stop_mu);
        pthread_join(w->syncer, NULL);
    }
    if (w->fd >= 0) {
        if (w->policy != STRATA_FSYNC_NONE) fdatasync(w->fd);
        close(w->fd);
    }
    pthread_mutex_destroy(&w->sync_mu);
    pthread_cond_destroy(&w->synced_cv);
    pthread_mutex_destroy(&w->stop_mu);
    pthread_cond_destroy(&w->stop_cv);
    free(w->dir);
    free(w);
}
