/* sweep.c - the sweep engine: a queue of points, worker threads, the
 * journal that makes a sweep resumable, MPI distribution, and the CSV/JSON
 * output. See moesim/sweep.h. */
#include "moesim/sweep.h"

#include <errno.h>
#include <fcntl.h>
#include <inttypes.h>
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>
#ifdef MOESIM_HAVE_MPI
#include <mpi.h>
#endif

void ms_sweep_opts_default(ms_sweep_opts *o) {
    memset(o, 0, sizeof *o);
    o->mpi = true;
}

bool ms_sweep_have_mpi(void) {
#ifdef MOESIM_HAVE_MPI
    return true;
#else
    return false;
#endif
}

uint64_t ms_sweep_line_checksum(uint64_t index, const char *row) {
    char head[32];
    int n = snprintf(head, sizeof head, "%" PRIu64 " ", index);
    uint64_t h = ms_fnv1a(MS_FNV_OFFSET, head, (size_t)n);
    return ms_fnv1a(h, row, strlen(row));
}

/* ------------------------------------------------------------ rows */

/* Cells -> compact JSON array of strings (bytes that are not valid UTF-8
 * become '?'). NULL when out of memory. */
static char *encode_row(char **cells, size_t n) {
    json_t *a = json_array();
    if (!a) return NULL;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_string(cells[i]);
        if (!s) { /* not UTF-8: keep ASCII only */
            char buf[MS_SWEEP_CELL];
            size_t k = 0;
            for (const char *p = cells[i]; *p && k + 1 < sizeof buf; p++)
                buf[k++] = (unsigned char)*p < 0x80 ? *p : '?';
            buf[k] = '\0';
            s = json_string(buf);
        }
        if (!s || json_array_append_new(a, s) != 0) {
            json_decref(a);
            return NULL;
        }
    }
    char *t = json_dumps(a, JSON_COMPACT | JSON_ENSURE_ASCII);
    json_decref(a);
    return t;
}

char **ms_sweep_row_cells(const char *row, size_t n_columns) {
    json_t *a = json_loads(row, JSON_REJECT_DUPLICATES, NULL);
    if (!json_is_array(a) || json_array_size(a) != n_columns) {
        json_decref(a);
        return NULL;
    }
    size_t bytes = n_columns * sizeof(char *);
    for (size_t i = 0; i < n_columns; i++) {
        json_t *s = json_array_get(a, i);
        if (!json_is_string(s)) {
            json_decref(a);
            return NULL;
        }
        bytes += json_string_length(s) + 1;
    }
    char **cells = ms_alloc_array(bytes, 1, NULL);
    if (!cells) {
        json_decref(a);
        return NULL;
    }
    char *p = (char *)(cells + n_columns);
    for (size_t i = 0; i < n_columns; i++) {
        json_t *s = json_array_get(a, i);
        size_t l = json_string_length(s);
        memcpy(p, json_string_value(s), l);
        p[l] = '\0';
        cells[i] = p;
        p += l + 1;
    }
    json_decref(a);
    return cells;
}

/* ----------------------------------------------------------- engine */

typedef struct engine {
    uint64_t n;
    const ms_sweep_evaluator *ev;
    const ms_sweep_opts *o;
    char **rows;
    uint64_t *pending;
    uint64_t n_pending, cursor, handed;
    uint64_t done, evaluated;
    pthread_mutex_t mu;
    int jfd;
    const char *jpath;
    ms_status st;
    ms_error err;
    bool stop;
} engine;

static bool next_index(engine *e, uint64_t *idx) {
    bool ok = false;
    pthread_mutex_lock(&e->mu);
    if (!e->stop && e->cursor < e->n_pending && (!e->o->stop_after || e->handed < e->o->stop_after)) {
        *idx = e->pending[e->cursor++];
        e->handed++;
        ok = true;
    }
    pthread_mutex_unlock(&e->mu);
    return ok;
}

static void fail_locked(engine *e, ms_status st, const ms_error *err, const char *fallback) {
    if (e->st == MS_OK) {
        e->st = st;
        if (err && err->msg[0]) e->err = *err;
        else ms_error_set(&e->err, st, "%s", fallback);
        e->err.status = st;
    }
    e->stop = true;
}

static void fail(engine *e, ms_status st, const ms_error *err, const char *fallback) {
    pthread_mutex_lock(&e->mu);
    fail_locked(e, st, err, fallback);
    pthread_mutex_unlock(&e->mu);
}

/* Writes all of buf (one write() in practice; loops on short writes). */
static int write_all(int fd, const char *buf, size_t len) {
    while (len) {
        ssize_t w = write(fd, buf, len);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        buf += w;
        len -= (size_t)w;
    }
    return 0;
}

/* Records a finished point: journal line (fsync'd) first, then the row.
 * Takes ownership of row. */
static void record(engine *e, uint64_t idx, char *row) {
    pthread_mutex_lock(&e->mu);
    if (idx >= e->n || e->rows[idx]) { /* never counted twice */
        pthread_mutex_unlock(&e->mu);
        free(row);
        return;
    }
    if (e->jfd >= 0) {
        size_t rl = strlen(row), cap = rl + 64;
        char *line = malloc(cap);
        if (!line) {
            fail_locked(e, MS_E_NOMEM, NULL, "out of memory");
            pthread_mutex_unlock(&e->mu);
            free(row);
            return;
        }
        int hl = snprintf(line, cap, "%" PRIu64 " %016" PRIx64 " ", idx, ms_sweep_line_checksum(idx, row));
        memcpy(line + hl, row, rl);
        line[hl + rl] = '\n';
        if (write_all(e->jfd, line, (size_t)hl + rl + 1) != 0 || fdatasync(e->jfd) != 0) {
            ms_error er;
            ms_error_set(&er, MS_E_IO, "%s: cannot append to the journal: %s", e->jpath, strerror(errno));
            fail_locked(e, MS_E_IO, &er, "journal write failed");
            free(line);
            pthread_mutex_unlock(&e->mu);
            free(row);
            return;
        }
        free(line);
    }
    e->rows[idx] = row;
    e->done++;
    e->evaluated++;
    if (e->o->progress) e->o->progress(e->o->progress_ctx, e->done, e->n);
    pthread_mutex_unlock(&e->mu);
}

/* Evaluates one point into a new encoded row. */
static ms_status eval_point(const ms_sweep_evaluator *ev, uint64_t idx, char **cells, char *store, char **row,
                            ms_error *err) {
    memset(store, 0, ev->n_columns * MS_SWEEP_CELL);
    for (size_t i = 0; i < ev->n_columns; i++) cells[i] = store + i * MS_SWEEP_CELL;
    ms_error_clear(err);
    ms_status st = ev->eval(ev->ctx, idx, cells, err);
    if (st != MS_OK) {
        if (!err->msg[0]) ms_error_set(err, st, "point %" PRIu64 " failed", idx);
        return st;
    }
    for (size_t i = 0; i < ev->n_columns; i++) store[i * MS_SWEEP_CELL + MS_SWEEP_CELL - 1] = '\0';
    *row = encode_row(cells, ev->n_columns);
    return *row ? MS_OK : ms_error_set(err, MS_E_NOMEM, "out of memory");
}

static void *local_worker(void *arg) {
    engine *e = arg;
    size_t nc = e->ev->n_columns;
    char **cells = ms_alloc_array(nc, sizeof *cells, NULL);
    char *store = ms_alloc_array(nc, MS_SWEEP_CELL, NULL);
    if (!cells || !store) {
        fail(e, MS_E_NOMEM, NULL, "out of memory");
        free(cells);
        free(store);
        return NULL;
    }
    uint64_t idx;
    while (next_index(e, &idx)) {
        ms_error err = {0};
        char *row = NULL;
        ms_status st = eval_point(e->ev, idx, cells, store, &row, &err);
        if (st != MS_OK) {
            fail(e, st, &err, "point failed");
            break;
        }
        record(e, idx, row);
    }
    free(cells);
    free(store);
    return NULL;
}

/* Starts n local workers (n >= 1); *started receives how many run. */
static void start_workers(engine *e, int n, pthread_t *tid, int *started) {
    *started = 0;
    for (int i = 0; i < n; i++) {
        if (pthread_create(&tid[i], NULL, local_worker, e) != 0) break;
        (*started)++;
    }
    if (*started == 0) fail(e, MS_E_INTERNAL, NULL, "cannot start a worker thread");
}

/* ---------------------------------------------------------- journal */

static ms_status journal_header(char *buf, size_t len, uint64_t n, uint64_t digest, size_t cols) {
    snprintf(buf, len, "moesim-sweep-journal 1 points=%" PRIu64 " spec=%016" PRIx64 " columns=%zu\n", n, digest,
             cols);
    return MS_OK;
}

static ms_status journal_open(engine *e, uint64_t *resumed, uint64_t *ignored, ms_error *err) {
    const char *path = e->o->journal;
    e->jpath = path;
    char head[160];
    journal_header(head, sizeof head, e->n, e->o->spec_digest, e->ev->n_columns);
    struct stat sb;
    bool exists = stat(path, &sb) == 0 && sb.st_size > 0;
    if (exists && !e->o->resume)
        return ms_error_set(err, MS_E_INPUT,
                            "%s: a journal of an earlier run exists: pass --resume to continue it, or remove it to "
                            "start over",
                            path);
    if (exists) {
        uint8_t *buf = NULL;
        size_t len = 0;
        ms_status st = ms_file_read_all(path, &buf, &len, err);
        if (st != MS_OK) return st;
        char *text = (char *)buf;
        char *nl = memchr(text, '\n', len);
        if (!nl) { /* a header cut short: nothing recorded yet */
            free(buf);
            if (truncate(path, 0) != 0)
                return ms_error_set(err, MS_E_IO, "%s: cannot truncate: %s", path, strerror(errno));
            exists = false;
        } else {
            size_t hl = (size_t)(nl - text) + 1;
            if (hl != strlen(head) || memcmp(text, head, hl) != 0) {
                bool ours = strncmp(text, "moesim-sweep-journal ", 21) == 0;
                free(buf);
                if (!ours)
                    return ms_error_set(err, MS_E_INPUT, "%s: not a moesim sweep journal", path);
                return ms_error_set(err, MS_E_INPUT,
                                    "%s: the journal belongs to another sweep (its header differs from '%.*s'): "
                                    "remove it or use the spec it was made with",
                                    path, (int)strlen(head) - 1, head);
            }
            size_t pos = hl, last_end = hl;
            while (pos < len) {
                char *eol = memchr(text + pos, '\n', len - pos);
                if (!eol) break; /* torn tail */
                *eol = '\0';
                char *line = text + pos;
                pos = (size_t)(eol - text) + 1;
                last_end = pos;
                char *p = line, *end;
                errno = 0;
                unsigned long long idx = strtoull(p, &end, 10);
                if (end == p || *end != ' ' || errno) {
                    (*ignored)++;
                    continue;
                }
                p = end + 1;
                unsigned long long sum = strtoull(p, &end, 16);
                if (end != p + 16 || *end != ' ') {
                    (*ignored)++;
                    continue;
                }
                const char *row = end + 1;
                if (idx >= e->n || ms_sweep_line_checksum(idx, row) != sum || e->rows[idx]) {
                    (*ignored)++;
                    continue;
                }
                char **cells = ms_sweep_row_cells(row, e->ev->n_columns);
                if (!cells) {
                    (*ignored)++;
                    continue;
                }
                ms_free(cells);
                size_t rl = strlen(row);
                e->rows[idx] = malloc(rl + 1);
                if (!e->rows[idx]) {
                    free(buf);
                    return ms_error_set(err, MS_E_NOMEM, "out of memory");
                }
                memcpy(e->rows[idx], row, rl + 1);
                e->done++;
                (*resumed)++;
            }
            if (last_end < len) { /* drop a line cut short so the next one starts clean */
                (*ignored)++;
                if (truncate(path, (off_t)last_end) != 0) {
                    free(buf);
                    return ms_error_set(err, MS_E_IO, "%s: cannot truncate a torn line: %s", path, strerror(errno));
                }
            }
            free(buf);
        }
    }
    e->jfd = open(path, O_WRONLY | O_APPEND | O_CREAT, 0644);
    if (e->jfd < 0) return ms_error_set(err, MS_E_IO, "%s: cannot open the journal: %s", path, strerror(errno));
    if (!exists) {
        if (write_all(e->jfd, head, strlen(head)) != 0 || fsync(e->jfd) != 0)
            return ms_error_set(err, MS_E_IO, "%s: cannot write the journal: %s", path, strerror(errno));
        /* make the new file's name durable too */
        char *dir = malloc(strlen(path) + 2);
        if (dir) {
            strcpy(dir, path);
            char *slash = strrchr(dir, '/');
            if (slash) *(slash == dir ? slash + 1 : slash) = '\0';
            else strcpy(dir, ".");
            int dfd = open(dir, O_RDONLY);
            if (dfd >= 0) {
                fsync(dfd);
                close(dfd);
            }
            free(dir);
        }
    }
    return MS_OK;
}

/* -------------------------------------------------------------- MPI */

#ifdef MOESIM_HAVE_MPI
#define TAG_REQ 1
#define TAG_RESULT 2
#define TAG_WORK 1000 /* + thread id */
#define STOP UINT64_MAX

typedef struct result_head {
    int32_t tid;
    int32_t status;
    uint64_t index;
} result_head;

typedef struct remote_ctx {
    const ms_sweep_evaluator *ev;
    int tid;
} remote_ctx;

/* A worker thread on rank > 0: ask rank 0 for a point, evaluate it, send
 * the row (which also asks for the next), until told to stop. */
static void *remote_worker(void *arg) {
    remote_ctx *rc = arg;
    const ms_sweep_evaluator *ev = rc->ev;
    size_t nc = ev->n_columns;
    char **cells = ms_alloc_array(nc, sizeof *cells, NULL);
    char *store = ms_alloc_array(nc, MS_SWEEP_CELL, NULL);
    int32_t tid = rc->tid;
    MPI_Send(&tid, 1, MPI_INT32_T, 0, TAG_REQ, MPI_COMM_WORLD);
    for (;;) {
        uint64_t idx;
        MPI_Recv(&idx, 1, MPI_UINT64_T, 0, TAG_WORK + rc->tid, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        if (idx == STOP) break;
        ms_error err = {0};
        char *row = NULL;
        ms_status st = cells && store ? eval_point(ev, idx, cells, store, &row, &err)
                                      : ms_error_set(&err, MS_E_NOMEM, "out of memory");
        const char *text = st == MS_OK ? row : err.msg;
        size_t tl = strlen(text) + 1, len = sizeof(result_head) + tl;
        char *msg = malloc(len);
        result_head h = {tid, (int32_t)st, idx};
        if (!msg || len > INT32_MAX) { /* still answer, as a failure */
            free(msg);
            static const char oom[] = "out of memory on a worker";
            char small[sizeof(result_head) + sizeof oom];
            h.status = MS_E_NOMEM;
            memcpy(small, &h, sizeof h);
            memcpy(small + sizeof h, oom, sizeof oom);
            MPI_Send(small, (int)sizeof small, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
        } else {
            memcpy(msg, &h, sizeof h);
            memcpy(msg + sizeof h, text, tl);
            MPI_Send(msg, (int)len, MPI_BYTE, 0, TAG_RESULT, MPI_COMM_WORLD);
            free(msg);
        }
        free(row);
    }
    free(cells);
    free(store);
    return NULL;
}

/* Rank 0: serve requests until every remote thread has been told to stop,
 * while local threads work through the same queue. */
static void serve(engine *e, int remote_threads) {
    int active = remote_threads;
    while (active > 0) {
        int flag = 0;
        MPI_Status ms;
        MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &ms);
        if (!flag) {
            struct timespec ts = {0, 200000}; /* 0.2 ms: do not spin a core */
            nanosleep(&ts, NULL);
            continue;
        }
        int count = 0;
        MPI_Get_count(&ms, MPI_BYTE, &count);
        char *buf = malloc(count > 0 ? (size_t)count : 1);
        if (!buf) {
            fail(e, MS_E_NOMEM, NULL, "out of memory");
            buf = NULL;
        }
        char dummy[sizeof(result_head) + 8];
        MPI_Recv(buf ? buf : dummy, buf ? count : 0, MPI_BYTE, ms.MPI_SOURCE, ms.MPI_TAG, MPI_COMM_WORLD,
                 MPI_STATUS_IGNORE);
        int32_t tid = 0;
        if (buf && ms.MPI_TAG == TAG_REQ && count >= (int)sizeof(int32_t)) {
            memcpy(&tid, buf, sizeof tid);
        } else if (buf && ms.MPI_TAG == TAG_RESULT && count > (int)sizeof(result_head)) {
            result_head h;
            memcpy(&h, buf, sizeof h);
            tid = h.tid;
            const char *text = buf + sizeof h;
            buf[count - 1] = '\0';
            if (h.status == MS_OK) {
                size_t tl = strlen(text);
                char *row = malloc(tl + 1);
                if (row) {
                    memcpy(row, text, tl + 1);
                    record(e, h.index, row);
                } else {
                    fail(e, MS_E_NOMEM, NULL, "out of memory");
                }
            } else {
                ms_error er;
                ms_error_set(&er, (ms_status)h.status, "%s (rank %d)", text, ms.MPI_SOURCE);
                fail(e, (ms_status)h.status, &er, "point failed");
            }
        }
        free(buf);
        uint64_t next;
        if (!next_index(e, &next)) {
            next = STOP;
            active--;
        }
        MPI_Send(&next, 1, MPI_UINT64_T, ms.MPI_SOURCE, TAG_WORK + tid, MPI_COMM_WORLD);
    }
}
#endif

/* ------------------------------------------------------------ run */

void ms_sweep_result_free(ms_sweep_result *r) {
    if (!r) return;
    if (r->rows)
        for (uint64_t i = 0; i < r->n_points; i++) free(r->rows[i]);
    free(r->rows);
    free(r);
}

static int threads_for(const ms_sweep_opts *o, int ranks) {
    int t = o->threads > 0 ? o->threads : ranks > 1 ? 1 : ms_thread_count();
    if (t < 1) t = 1;
    if (t > 1024) t = 1024;
    return t;
}

ms_status ms_sweep_run(uint64_t n_points, const ms_sweep_evaluator *ev, const ms_sweep_opts *opts,
                       ms_sweep_result **out, ms_error *err) {
    *out = NULL;
    ms_sweep_opts def;
    if (!opts) {
        ms_sweep_opts_default(&def);
        opts = &def;
    }
    int rank = 0, ranks = 1;
#ifdef MOESIM_HAVE_MPI
    int inited = 0, finalized = 0;
    MPI_Initialized(&inited);
    MPI_Finalized(&finalized);
    bool use_mpi = opts->mpi && inited && !finalized;
    if (use_mpi) {
        MPI_Comm_rank(MPI_COMM_WORLD, &rank);
        MPI_Comm_size(MPI_COMM_WORLD, &ranks);
        if (ranks < 2) use_mpi = false;
    }
#endif
    if (n_points == 0) return ms_error_set(err, MS_E_INPUT, "the sweep has no points");
    if (!ev || ev->n_columns == 0 || !ev->eval) return ms_error_set(err, MS_E_INPUT, "the sweep has no columns");
    if (n_points > (uint64_t)SIZE_MAX / sizeof(char *)) return ms_error_set(err, MS_E_NOMEM, "too many points");
    ms_sweep_result *r = calloc(1, sizeof *r);
    if (!r) return ms_error_set(err, MS_E_NOMEM, "out of memory");
    r->n_points = n_points;
    r->rank = rank;
    r->ranks = ranks;
    int threads = threads_for(opts, ranks);

#ifdef MOESIM_HAVE_MPI
    if (use_mpi && rank != 0) {
        /* a worker rank: announce the thread count, work, learn the outcome */
        int provided = MPI_THREAD_SINGLE;
        MPI_Query_thread(&provided);
        if (provided < MPI_THREAD_MULTIPLE) threads = 1;
        MPI_Gather(&threads, 1, MPI_INT, NULL, 0, MPI_INT, 0, MPI_COMM_WORLD);
        int go = 0;
        MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (go) {
            remote_ctx *ctx = calloc((size_t)threads, sizeof *ctx);
            pthread_t *tid = calloc((size_t)threads, sizeof *tid);
            int started = 0;
            for (int i = 0; ctx && tid && i < threads; i++) {
                ctx[i].ev = ev;
                ctx[i].tid = i;
                if (threads == 1) {
                    remote_worker(&ctx[0]);
                    break;
                }
                if (pthread_create(&tid[i], NULL, remote_worker, &ctx[i]) == 0) started++;
                else remote_worker(&ctx[i]); /* run it here rather than leave rank 0 waiting */
            }
            for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
            free(ctx);
            free(tid);
        }
        int st = 0;
        ms_error e0 = {0};
        uint64_t counts[3] = {0, 0, 0};
        MPI_Bcast(&st, 1, MPI_INT, 0, MPI_COMM_WORLD);
        MPI_Bcast(e0.msg, MS_ERROR_MAX, MPI_CHAR, 0, MPI_COMM_WORLD);
        MPI_Bcast(counts, 3, MPI_UINT64_T, 0, MPI_COMM_WORLD);
        r->done = counts[0];
        r->resumed = counts[1];
        r->evaluated = counts[2];
        *out = r;
        if (st != MS_OK) return ms_error_set(err, (ms_status)st, "%s", e0.msg);
        return MS_OK;
    }
#endif

    engine e;
    memset(&e, 0, sizeof e);
    e.n = n_points;
    e.ev = ev;
    e.o = opts;
    e.jfd = -1;
    pthread_mutex_init(&e.mu, NULL);
    ms_status st = MS_OK;
    r->rows = calloc(n_points, sizeof *r->rows);
    e.rows = r->rows;
    if (!r->rows) st = ms_error_set(err, MS_E_NOMEM, "out of memory");
    if (st == MS_OK && opts->journal) st = journal_open(&e, &r->resumed, &r->ignored_lines, err);
    if (st == MS_OK) {
        e.pending = ms_alloc_array(n_points, sizeof *e.pending, err);
        if (!e.pending) st = MS_E_NOMEM;
        for (uint64_t i = 0; e.pending && i < n_points; i++)
            if (!e.rows[i]) e.pending[e.n_pending++] = i;
    }
    if (st == MS_OK && opts->progress && e.done) opts->progress(opts->progress_ctx, e.done, n_points);
#ifdef MOESIM_HAVE_MPI
    if (use_mpi) {
        int *counts = calloc((size_t)ranks, sizeof *counts);
        int remote = 0;
        MPI_Gather(&threads, 1, MPI_INT, counts, 1, MPI_INT, 0, MPI_COMM_WORLD);
        for (int i = 1; counts && i < ranks; i++) remote += counts[i];
        free(counts);
        int go = st == MS_OK;
        MPI_Bcast(&go, 1, MPI_INT, 0, MPI_COMM_WORLD);
        if (go) {
            pthread_t *tid = calloc((size_t)threads, sizeof *tid);
            int started = 0;
            if (tid) start_workers(&e, threads, tid, &started);
            else fail(&e, MS_E_NOMEM, NULL, "out of memory");
            serve(&e, remote);
            for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
            free(tid);
            if (e.st != MS_OK) {
                st = e.st;
                if (err) *err = e.err;
            }
        }
        int sti = (int)st;
        char msg[MS_ERROR_MAX] = {0};
        if (st != MS_OK && err) memcpy(msg, err->msg, MS_ERROR_MAX);
        uint64_t cnt[3] = {e.done, r->resumed, e.evaluated};
        MPI_Bcast(&sti, 1, MPI_INT, 0, MPI_COMM_WORLD);
        MPI_Bcast(msg, MS_ERROR_MAX, MPI_CHAR, 0, MPI_COMM_WORLD);
        MPI_Bcast(cnt, 3, MPI_UINT64_T, 0, MPI_COMM_WORLD);
    } else
#endif
        if (st == MS_OK && e.n_pending) {
        pthread_t *tid = calloc((size_t)threads, sizeof *tid);
        int started = 0;
        if (tid) start_workers(&e, threads, tid, &started);
        else fail(&e, MS_E_NOMEM, NULL, "out of memory");
        for (int i = 0; i < started; i++) pthread_join(tid[i], NULL);
        free(tid);
        if (e.st != MS_OK) {
            st = e.st;
            if (err) *err = e.err;
        }
    }
    if (e.jfd >= 0 && close(e.jfd) != 0 && st == MS_OK)
        st = ms_error_set(err, MS_E_IO, "%s: closing the journal failed", opts->journal);
    r->done = e.done;
    r->evaluated = e.evaluated;
    free(e.pending);
    pthread_mutex_destroy(&e.mu);
    *out = r;
    return st;
}

/* ------------------------------------------------------------ output */

static void csv_cell(FILE *fp, const char *s) {
    if (!strpbrk(s, ",\"\n\r")) {
        fputs(s, fp);
        return;
    }
    fputc('"', fp);
    for (; *s; s++) {
        if (*s == '"') fputc('"', fp);
        fputc(*s, fp);
    }
    fputc('"', fp);
}

static ms_status check_complete(const ms_sweep_result *r, ms_error *err) {
    if (!r->rows) return ms_error_set(err, MS_E_INPUT, "this rank holds no rows");
    if (r->done != r->n_points)
        return ms_error_set(err, MS_E_INPUT, "the sweep is incomplete: %" PRIu64 " of %" PRIu64 " points done",
                            r->done, r->n_points);
    return MS_OK;
}

ms_status ms_sweep_write_csv(const ms_sweep_result *r, const ms_sweep_evaluator *ev, FILE *fp, ms_error *err) {
    ms_status st = check_complete(r, err);
    if (st != MS_OK) return st;
    for (size_t c = 0; c < ev->n_columns; c++) {
        if (c) fputc(',', fp);
        csv_cell(fp, ev->columns[c]);
    }
    fputc('\n', fp);
    for (uint64_t i = 0; i < r->n_points; i++) {
        char **cells = ms_sweep_row_cells(r->rows[i], ev->n_columns);
        if (!cells) return ms_error_set(err, MS_E_INPUT, "row %" PRIu64 " is malformed", i);
        for (size_t c = 0; c < ev->n_columns; c++) {
            if (c) fputc(',', fp);
            csv_cell(fp, cells[c]);
        }
        fputc('\n', fp);
        ms_free(cells);
    }
    return ferror(fp) ? ms_error_set(err, MS_E_IO, "writing CSV failed") : MS_OK;
}

/* A JSON number as RFC 8259 defines it. */
static bool is_json_number(const char *s) {
    if (*s == '-') s++;
    if (*s == '0') s++;
    else if (*s >= '1' && *s <= '9')
        while (*s >= '0' && *s <= '9') s++;
    else return false;
    if (*s == '.') {
        s++;
        if (!(*s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9') s++;
    }
    if (*s == 'e' || *s == 'E') {
        s++;
        if (*s == '+' || *s == '-') s++;
        if (!(*s >= '0' && *s <= '9')) return false;
        while (*s >= '0' && *s <= '9') s++;
    }
    return *s == '\0';
}

static void json_str(FILE *fp, const char *s) {
    json_t *j = json_string(s);
    char *t = j ? json_dumps(j, JSON_ENCODE_ANY | JSON_ENSURE_ASCII) : NULL;
    fputs(t ? t : "\"\"", fp);
    free(t);
    json_decref(j);
}

ms_status ms_sweep_write_json(const ms_sweep_result *r, const ms_sweep_evaluator *ev, uint64_t spec_digest,
                              FILE *fp, ms_error *err) {
    ms_status st = check_complete(r, err);
    if (st != MS_OK) return st;
    fprintf(fp, "{\n  \"sweep\": {\"points\": %" PRIu64 ", \"spec_digest\": \"%016" PRIx64 "\"},\n  \"columns\": [",
            r->n_points, spec_digest);
    for (size_t c = 0; c < ev->n_columns; c++) {
        if (c) fputs(", ", fp);
        json_str(fp, ev->columns[c]);
    }
    fputs("],\n  \"rows\": [\n", fp);
    for (uint64_t i = 0; i < r->n_points; i++) {
        char **cells = ms_sweep_row_cells(r->rows[i], ev->n_columns);
        if (!cells) return ms_error_set(err, MS_E_INPUT, "row %" PRIu64 " is malformed", i);
        fputs("    {", fp);
        for (size_t c = 0; c < ev->n_columns; c++) {
            if (c) fputs(", ", fp);
            json_str(fp, ev->columns[c]);
            fputs(": ", fp);
            if (ev->numeric && ev->numeric[c] && is_json_number(cells[c])) fputs(cells[c], fp);
            else if (ev->numeric && ev->numeric[c] && !cells[c][0]) fputs("null", fp);
            else json_str(fp, cells[c]);
        }
        fputs(i + 1 < r->n_points ? "},\n" : "}\n", fp);
        ms_free(cells);
    }
    fputs("  ]\n}\n", fp);
    return ferror(fp) ? ms_error_set(err, MS_E_IO, "writing JSON failed") : MS_OK;
}
