/*
 * libcocaine-slave: the engine <-> slave protocol (docs/protocol.md) for C
 * and C++ apps. See cocaine/slave.h for the API.
 *
 * Threads: the thread that calls cocaine_run reads frames and routes them
 * to sessions; a heartbeat thread sends a heartbeat every period; each
 * session's handler runs on a thread of its own, so sessions interleave
 * and a handler may answer before its body has all arrived. Writes to the
 * socket share one lock, so frames never interleave.
 *
 * MessagePack is hand-written here: frames use five of its types (array,
 * unsigned int, str, bin, small negative ints never), and a codec of
 * ~100 lines keeps apps free of any library beyond libc and pthreads.
 */
#define _GNU_SOURCE
#include "cocaine/slave.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

enum { F_HANDSHAKE = 1, F_HEARTBEAT, F_TERMINATE, F_INVOKE, F_CHUNK, F_ERROR, F_CHOKE };

#define PROTO_VERSION 1
#define MAX_FRAME (8u << 20)
#define CHUNK_SIZE (1u << 20)    /* most body bytes in one chunk frame */
#define BUFFER_SIZE (64u << 10)  /* an answer is sent when this much is buffered */
#define GONE_GRACE_MS 1000       /* engine gone: how long handlers get to notice */
#define MAX_MESSAGE 300          /* error messages go to a caller: short */
#define HANDLER_STACK (2u << 20)
/* Request body read from the socket that no handler has taken yet, across
 * sessions: past this the reader stops reading (the engine's writes then
 * wait) until handlers take half of it or one waits for input. */
#define MAX_UNREAD (8u << 20)

/* ---- registry ---------------------------------------------------------- */

struct handler {
    char *event;
    cocaine_handler fn;
    void *data;
    struct handler *next;
};

static struct handler *handlers;

int cocaine_handle(const char *event, cocaine_handler fn, void *data) {
    struct handler *h = calloc(1, sizeof *h);
    if (!h || !(h->event = strdup(event))) {
        free(h);
        return -1;
    }
    h->fn = fn;
    h->data = data;
    h->next = handlers;
    handlers = h;
    return 0;
}

static struct handler *lookup(const char *event) {
    for (struct handler *h = handlers; h; h = h->next)
        if (strcmp(h->event, event) == 0)
            return h;
    return NULL;
}

/* ---- sessions ---------------------------------------------------------- */

struct piece {
    struct piece *next;
    size_t len, off;
    char data[];
};

struct cocaine_session {
    uint64_t id;
    char *event;
    struct handler *handler;
    struct cocaine_session *next; /* in the table */

    /* Guarded by mu (the library's one lock for sessions). */
    struct piece *head, *tail;
    struct piece *current; /* handed out by cocaine_request_next */
    size_t queued;         /* bytes in head..tail not yet taken */
    int done;              /* the body ended (choke) or was cancelled */
    int cancelled;
    char reason[128];

    /* Used by the handler thread only. */
    char *buf;
    size_t buflen, bufcap;
    int ended;
};

static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER; /* any session changed, or active dropped */
static struct cocaine_session *sessions;
static int active;      /* handler threads running */
static size_t unread;   /* bytes queued in all sessions, not yet taken */
static int input_waiters; /* handlers waiting for body that has not come */
static int terminating; /* the engine said terminate */
static int sock = -1;
static pthread_mutex_t wmu = PTHREAD_MUTEX_INITIALIZER; /* one writer at a time */
static int write_failed;

static void logf_(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void logf_(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    flockfile(stderr);
    fputs("cocaine: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    funlockfile(stderr);
    fflush(stderr);
    va_end(ap);
}

static struct cocaine_session *find(uint64_t id) {
    for (struct cocaine_session *s = sessions; s; s = s->next)
        if (s->id == id)
            return s;
    return NULL;
}

static void unlink_session(struct cocaine_session *s) {
    for (struct cocaine_session **p = &sessions; *p; p = &(*p)->next)
        if (*p == s) {
            *p = s->next;
            return;
        }
}

static void free_pieces(struct piece *p) {
    while (p) {
        struct piece *n = p->next;
        free(p);
        p = n;
    }
}

/* taken accounts for body bytes leaving the queue (mu held), waking the
 * reader when it paused and there is room again. */
static void taken(struct cocaine_session *s, size_t n) {
    s->queued -= n;
    unread -= n;
    if (unread <= MAX_UNREAD / 2 && unread + n > MAX_UNREAD / 2)
        pthread_cond_broadcast(&cond);
}

/* drop_body frees what a session will never read (mu held). */
static void drop_body(struct cocaine_session *s) {
    free_pieces(s->head);
    s->head = s->tail = NULL;
    taken(s, s->queued);
}

static void free_session(struct cocaine_session *s) {
    free_pieces(s->head);
    free(s->current);
    free(s->buf);
    free(s->event);
    free(s);
}

/* ---- MessagePack encoding ---------------------------------------------- */

struct enc {
    unsigned char b[64];
    size_t n;
};

static void put_u8(struct enc *e, unsigned v) { e->b[e->n++] = (unsigned char)v; }

static void put_be(struct enc *e, uint64_t v, int bytes) {
    for (int i = bytes - 1; i >= 0; i--)
        put_u8(e, (unsigned)(v >> (8 * i)) & 0xff);
}

static void put_uint(struct enc *e, uint64_t v) {
    if (v < 128) {
        put_u8(e, (unsigned)v);
    } else if (v <= 0xff) {
        put_u8(e, 0xcc);
        put_be(e, v, 1);
    } else if (v <= 0xffff) {
        put_u8(e, 0xcd);
        put_be(e, v, 2);
    } else if (v <= 0xffffffffu) {
        put_u8(e, 0xce);
        put_be(e, v, 4);
    } else {
        put_u8(e, 0xcf);
        put_be(e, v, 8);
    }
}

static void put_strhead(struct enc *e, size_t n) {
    if (n < 32) {
        put_u8(e, 0xa0 | (unsigned)n);
    } else if (n <= 0xff) {
        put_u8(e, 0xd9);
        put_be(e, n, 1);
    } else if (n <= 0xffff) {
        put_u8(e, 0xda);
        put_be(e, n, 2);
    } else {
        put_u8(e, 0xdb);
        put_be(e, n, 4);
    }
}

static void put_binhead(struct enc *e, size_t n) {
    if (n <= 0xff) {
        put_u8(e, 0xc4);
        put_be(e, n, 1);
    } else if (n <= 0xffff) {
        put_u8(e, 0xc5);
        put_be(e, n, 2);
    } else {
        put_u8(e, 0xc6);
        put_be(e, n, 4);
    }
}

/* frame_head starts a frame of the given array length; frame_len fills in
 * its length prefix once the payload size (after e) is known. */
static void frame_head(struct enc *e, unsigned arity, unsigned type, uint64_t session) {
    e->n = 4;
    put_u8(e, 0x90 | arity);
    put_u8(e, type);
    put_uint(e, session);
}

static void frame_len(struct enc *e, size_t extra) {
    uint32_t n = (uint32_t)(e->n - 4 + extra);
    e->b[0] = (unsigned char)(n >> 24);
    e->b[1] = (unsigned char)(n >> 16);
    e->b[2] = (unsigned char)(n >> 8);
    e->b[3] = (unsigned char)n;
}

/* ---- writing ----------------------------------------------------------- */

/* send_iov writes all of iov in order under the write lock. */
static int send_iov(struct iovec *iov, int cnt) {
    int rc = 0;
    pthread_mutex_lock(&wmu);
    if (write_failed) {
        pthread_mutex_unlock(&wmu);
        return -1;
    }
    while (cnt > 0) {
        struct msghdr m = {.msg_iov = iov, .msg_iovlen = (size_t)(cnt > 1024 ? 1024 : cnt)};
        ssize_t w = sendmsg(sock, &m, MSG_NOSIGNAL);
        if (w < 0) {
            if (errno == EINTR)
                continue;
            write_failed = 1;
            rc = -1;
            break;
        }
        while (cnt > 0 && (size_t)w >= iov->iov_len) {
            w -= (ssize_t)iov->iov_len;
            iov++;
            cnt--;
        }
        if (cnt > 0) {
            iov->iov_base = (char *)iov->iov_base + w;
            iov->iov_len -= (size_t)w;
        }
    }
    pthread_mutex_unlock(&wmu);
    return rc;
}

static int send_small(struct enc *e, const void *tail, size_t taillen) {
    frame_len(e, taillen);
    struct iovec iov[2] = {{e->b, e->n}, {(void *)tail, taillen}};
    return send_iov(iov, taillen ? 2 : 1);
}

static int send_str_frame(unsigned arity, unsigned type, uint64_t session, int code, const char *msg) {
    struct enc e;
    size_t n = strlen(msg);
    frame_head(&e, arity, type, session);
    if (type == F_ERROR)
        put_uint(&e, (uint64_t)code);
    put_strhead(&e, n);
    return send_small(&e, msg, n);
}

/* flush_frames sends the buffered answer as chunk frames, then, if last is
 * set, that final frame, all in one write. */
static int flush_frames(struct cocaine_session *s, struct enc *last) {
    size_t nchunks = (s->buflen + CHUNK_SIZE - 1) / CHUNK_SIZE;
    size_t cnt = 2 * nchunks + (last ? 1 : 0);
    if (cnt == 0)
        return 0;
    struct iovec stackiov[8];
    struct enc stackhead[4];
    struct iovec *iov = stackiov;
    struct enc *heads = stackhead;
    if (cnt > 8 || nchunks > 4) {
        iov = malloc(cnt * sizeof *iov);
        heads = malloc((nchunks ? nchunks : 1) * sizeof *heads);
        if (!iov || !heads) {
            free(iov == stackiov ? NULL : iov);
            free(heads == stackhead ? NULL : heads);
            return -1;
        }
    }
    size_t k = 0;
    for (size_t i = 0; i < nchunks; i++) {
        size_t off = i * CHUNK_SIZE;
        size_t n = s->buflen - off < CHUNK_SIZE ? s->buflen - off : CHUNK_SIZE;
        frame_head(&heads[i], 3, F_CHUNK, s->id);
        put_binhead(&heads[i], n);
        frame_len(&heads[i], n);
        iov[k++] = (struct iovec){heads[i].b, heads[i].n};
        iov[k++] = (struct iovec){s->buf + off, n};
    }
    if (last) {
        frame_len(last, 0);
        iov[k++] = (struct iovec){last->b, last->n};
    }
    int rc = send_iov(iov, (int)k);
    if (iov != stackiov)
        free(iov);
    if (heads != stackhead)
        free(heads);
    s->buflen = 0;
    return rc;
}

static int usable(struct cocaine_session *s) {
    if (s->ended)
        return -1;
    pthread_mutex_lock(&mu);
    int c = s->cancelled;
    pthread_mutex_unlock(&mu);
    if (c) {
        errno = ECANCELED;
        return -1;
    }
    return 0;
}

int cocaine_response_write(cocaine_response *s, const void *data, size_t len) {
    if (usable(s) < 0)
        return -1;
    if (s->buflen + len > s->bufcap) {
        size_t cap = s->bufcap ? s->bufcap : BUFFER_SIZE;
        while (cap < s->buflen + len)
            cap *= 2;
        char *b = realloc(s->buf, cap);
        if (!b)
            return -1;
        s->buf = b;
        s->bufcap = cap;
    }
    memcpy(s->buf + s->buflen, data, len);
    s->buflen += len;
    if (s->buflen >= BUFFER_SIZE)
        return flush_frames(s, NULL);
    return 0;
}

int cocaine_response_flush(cocaine_response *s) {
    if (usable(s) < 0)
        return -1;
    return flush_frames(s, NULL);
}

int cocaine_response_close(cocaine_response *s) {
    if (s->ended)
        return -1;
    s->ended = 1;
    struct enc e;
    frame_head(&e, 2, F_CHOKE, s->id);
    return flush_frames(s, &e);
}

static int end_error(struct cocaine_session *s, int code, const char *msg) {
    if (s->ended)
        return -1;
    s->ended = 1;
    struct enc e;
    size_t n = strlen(msg);
    frame_head(&e, 4, F_ERROR, s->id);
    put_uint(&e, (uint64_t)code);
    put_strhead(&e, n);
    /* The message follows the head in the same write: flush the chunks,
     * then the error frame with its text. */
    int rc = flush_frames(s, NULL);
    if (rc == 0)
        rc = send_small(&e, msg, n);
    return rc;
}

int cocaine_response_error(cocaine_response *s, int code, const char *fmt, ...) {
    char msg[MAX_MESSAGE + 1];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    if (s->ended)
        return -1;
    logf_("handler of \"%s\" answered error %d: %s", s->event, code, msg);
    return end_error(s, code, msg);
}

/* ---- reading the request ----------------------------------------------- */

const char *cocaine_request_event(const cocaine_request *s) { return s->event; }

int cocaine_request_cancelled(const cocaine_request *s) {
    pthread_mutex_lock(&mu);
    int c = s->cancelled;
    pthread_mutex_unlock(&mu);
    return c;
}

int cocaine_request_wait_cancelled(cocaine_request *s, long ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    while (!s->cancelled)
        if (pthread_cond_timedwait(&cond, &mu, &until) == ETIMEDOUT)
            break;
    int c = s->cancelled;
    pthread_mutex_unlock(&mu);
    return c;
}

/* wait_input waits (mu held) for body or its end; a paused reader reads
 * again meanwhile. */
static void wait_input(struct cocaine_session *s) {
    if (s->head || s->done)
        return;
    input_waiters++;
    pthread_cond_broadcast(&cond);
    while (!s->head && !s->done)
        pthread_cond_wait(&cond, &mu);
    input_waiters--;
}

int cocaine_request_next(cocaine_request *s, const void **data, size_t *len) {
    pthread_mutex_lock(&mu);
    free(s->current);
    s->current = NULL;
    wait_input(s);
    int rc;
    if (s->cancelled) {
        errno = ECANCELED;
        rc = -1;
    } else if (!s->head) {
        rc = 0;
    } else {
        struct piece *p = s->head;
        s->head = p->next;
        if (!s->head)
            s->tail = NULL;
        s->current = p;
        *data = p->data + p->off;
        *len = p->len - p->off;
        taken(s, p->len - p->off);
        rc = 1;
    }
    pthread_mutex_unlock(&mu);
    return rc;
}

ssize_t cocaine_request_read(cocaine_request *s, void *buf, size_t n) {
    if (n == 0)
        return 0;
    pthread_mutex_lock(&mu);
    free(s->current);
    s->current = NULL;
    wait_input(s);
    ssize_t got;
    if (s->cancelled) {
        errno = ECANCELED;
        got = -1;
    } else if (!s->head) {
        got = 0;
    } else {
        struct piece *p = s->head;
        size_t k = p->len - p->off < n ? p->len - p->off : n;
        memcpy(buf, p->data + p->off, k);
        p->off += k;
        taken(s, k);
        if (p->off == p->len) {
            s->head = p->next;
            if (!s->head)
                s->tail = NULL;
            free(p);
        }
        got = (ssize_t)k;
    }
    pthread_mutex_unlock(&mu);
    return got;
}

void *cocaine_request_read_all(cocaine_request *s, size_t *len) {
    size_t n = 0, cap = 4096;
    char *out = malloc(cap);
    const void *p;
    size_t k;
    int r;
    if (!out)
        return NULL;
    while ((r = cocaine_request_next(s, &p, &k)) > 0) {
        if (n + k + 1 > cap) {
            while (n + k + 1 > cap)
                cap *= 2;
            char *o = realloc(out, cap);
            if (!o) {
                free(out);
                return NULL;
            }
            out = o;
        }
        memcpy(out + n, p, k);
        n += k;
    }
    if (r < 0) {
        free(out);
        return NULL;
    }
    out[n] = 0;
    if (len)
        *len = n;
    return out;
}

/* ---- running handlers -------------------------------------------------- */

static void *run_handler(void *arg) {
    struct cocaine_session *s = arg;
    int rc = s->handler->fn(s, s, s->handler->data);
    if (!s->ended) {
        pthread_mutex_lock(&mu);
        int cancelled = s->cancelled;
        pthread_mutex_unlock(&mu);
        if (cancelled)
            end_error(s, 520, "cancelled"); /* the engine ignores it; the session must end */
        else if (rc != 0) {
            logf_("handler of \"%s\" failed (returned %d)", s->event, rc);
            char msg[64];
            snprintf(msg, sizeof msg, "handler failed (returned %d)", rc);
            end_error(s, COCAINE_APP_ERROR, msg);
        } else
            cocaine_response_close(s);
    }
    pthread_mutex_lock(&mu);
    unlink_session(s);
    drop_body(s);
    active--;
    int last = terminating && active == 0;
    pthread_cond_broadcast(&cond);
    pthread_mutex_unlock(&mu);
    free_session(s);
    if (last)
        shutdown(sock, SHUT_RD); /* wakes the reader: time to say goodbye */
    return NULL;
}

/* ---- reading frames ---------------------------------------------------- */

struct dec {
    const unsigned char *p, *end;
};

static int get_be(struct dec *d, int bytes, uint64_t *v) {
    if (d->end - d->p < bytes)
        return -1;
    *v = 0;
    for (int i = 0; i < bytes; i++)
        *v = (*v << 8) | *d->p++;
    return 0;
}

static int get_uint(struct dec *d, uint64_t *v) {
    if (d->p >= d->end)
        return -1;
    unsigned c = *d->p++;
    if (c < 0x80) {
        *v = c;
        return 0;
    }
    switch (c) {
    case 0xcc: return get_be(d, 1, v);
    case 0xcd: return get_be(d, 2, v);
    case 0xce: return get_be(d, 4, v);
    case 0xcf: return get_be(d, 8, v);
    case 0xd0: case 0xd1: case 0xd2: case 0xd3: {
        int bytes = 1 << (c - 0xd0);
        if (get_be(d, bytes, v) < 0)
            return -1;
        int64_t sv = (int64_t)(*v << (64 - 8 * bytes)) >> (64 - 8 * bytes);
        if (sv < 0)
            return -1;
        return 0;
    }
    }
    return -1;
}

/* get_bytes reads a str or a bin. */
static int get_bytes(struct dec *d, const unsigned char **data, size_t *len) {
    if (d->p >= d->end)
        return -1;
    unsigned c = *d->p++;
    uint64_t n;
    if ((c & 0xe0) == 0xa0)
        n = c & 0x1f;
    else if (c == 0xd9 || c == 0xc4) {
        if (get_be(d, 1, &n) < 0)
            return -1;
    } else if (c == 0xda || c == 0xc5) {
        if (get_be(d, 2, &n) < 0)
            return -1;
    } else if (c == 0xdb || c == 0xc6) {
        if (get_be(d, 4, &n) < 0)
            return -1;
    } else
        return -1;
    if ((uint64_t)(d->end - d->p) < n)
        return -1;
    *data = d->p;
    *len = (size_t)n;
    d->p += n;
    return 0;
}

static int get_array(struct dec *d, uint64_t *n) {
    if (d->p >= d->end)
        return -1;
    unsigned c = *d->p++;
    if ((c & 0xf0) == 0x90) {
        *n = c & 0x0f;
        return 0;
    }
    if (c == 0xdc)
        return get_be(d, 2, n);
    if (c == 0xdd)
        return get_be(d, 4, n);
    return -1;
}

/* The engine's side of a cancelled or ended session: wake its handler. */
static void cancel_locked(struct cocaine_session *s, const char *reason) {
    if (!s->cancelled) {
        s->cancelled = 1;
        snprintf(s->reason, sizeof s->reason, "%s", reason);
    }
    s->done = 1;
    drop_body(s);
}

static void start_session(uint64_t id, const unsigned char *ev, size_t evlen) {
    char *event = strndup((const char *)ev, evlen);
    if (!event) {
        send_str_frame(4, F_ERROR, id, 500, "out of memory");
        return;
    }
    struct handler *h = lookup(event);
    if (!h) {
        char msg[MAX_MESSAGE];
        snprintf(msg, sizeof msg, "no handler for event \"%.200s\"", event);
        send_str_frame(4, F_ERROR, id, COCAINE_NOT_FOUND, msg);
        free(event);
        return;
    }
    struct cocaine_session *s = calloc(1, sizeof *s);
    if (!s) {
        free(event);
        send_str_frame(4, F_ERROR, id, 500, "out of memory");
        return;
    }
    s->id = id;
    s->event = event;
    s->handler = h;
    pthread_mutex_lock(&mu);
    s->next = sessions;
    sessions = s;
    active++;
    pthread_mutex_unlock(&mu);

    pthread_attr_t attr;
    pthread_attr_init(&attr);
    pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
    pthread_attr_setstacksize(&attr, HANDLER_STACK);
    pthread_t t;
    int err = pthread_create(&t, &attr, run_handler, s);
    pthread_attr_destroy(&attr);
    if (err) {
        logf_("cannot start a handler thread: %s", strerror(err));
        pthread_mutex_lock(&mu);
        unlink_session(s);
        active--;
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&mu);
        send_str_frame(4, F_ERROR, id, 500, "cannot start a handler thread");
        free_session(s);
    }
}

/* route handles one frame; -1 means it breaks the protocol. */
static int route(const unsigned char *p, size_t n) {
    struct dec d = {p, p + n};
    uint64_t arity, type, session;
    if (get_array(&d, &arity) < 0 || arity < 2 || get_uint(&d, &type) < 0 || get_uint(&d, &session) < 0)
        return -1;
    const unsigned char *data;
    size_t len;
    switch (type) {
    case F_INVOKE:
        if (arity != 3 || get_bytes(&d, &data, &len) < 0)
            return -1;
        start_session(session, data, len);
        return 0;
    case F_TERMINATE:
        pthread_mutex_lock(&mu);
        terminating = 1;
        int idle = active == 0;
        pthread_mutex_unlock(&mu);
        if (idle)
            shutdown(sock, SHUT_RD);
        return 0;
    case F_CHUNK: {
        if (arity != 3 || get_bytes(&d, &data, &len) < 0)
            return -1;
        if (len == 0)
            return 0;
        struct piece *pc = malloc(sizeof *pc + len);
        if (!pc)
            return -1;
        pc->next = NULL;
        pc->len = len;
        pc->off = 0;
        memcpy(pc->data, data, len);
        pthread_mutex_lock(&mu);
        struct cocaine_session *s = find(session);
        if (s && !s->done) {
            if (s->tail)
                s->tail->next = pc;
            else
                s->head = pc;
            s->tail = pc;
            s->queued += len;
            unread += len;
            pc = NULL;
            pthread_cond_broadcast(&cond);
        }
        pthread_mutex_unlock(&mu);
        free(pc);
        return 0;
    }
    case F_CHOKE: {
        if (arity != 2)
            return -1;
        pthread_mutex_lock(&mu);
        struct cocaine_session *s = find(session);
        if (s) {
            s->done = 1;
            pthread_cond_broadcast(&cond);
        }
        pthread_mutex_unlock(&mu);
        return 0;
    }
    case F_ERROR: {
        uint64_t code;
        if (arity != 4 || get_uint(&d, &code) < 0 || get_bytes(&d, &data, &len) < 0)
            return -1;
        char reason[128];
        snprintf(reason, sizeof reason, "%llu %.*s", (unsigned long long)code, (int)(len > 100 ? 100 : len), data);
        pthread_mutex_lock(&mu);
        struct cocaine_session *s = find(session);
        if (s) {
            cancel_locked(s, reason);
            pthread_cond_broadcast(&cond);
        }
        pthread_mutex_unlock(&mu);
        return 0;
    }
    case F_HEARTBEAT:
        return 0;
    }
    return -1;
}

/* ---- heartbeats -------------------------------------------------------- */

static pthread_mutex_t hbmu = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t hbcond;
static int hbstop;
static long period_ms = 5000;

static void *heartbeat(void *arg) {
    (void)arg;
    struct timespec next;
    clock_gettime(CLOCK_MONOTONIC, &next);
    pthread_mutex_lock(&hbmu);
    while (!hbstop) {
        next.tv_sec += period_ms / 1000;
        next.tv_nsec += (period_ms % 1000) * 1000000L;
        if (next.tv_nsec >= 1000000000L) {
            next.tv_sec++;
            next.tv_nsec -= 1000000000L;
        }
        while (!hbstop && pthread_cond_timedwait(&hbcond, &hbmu, &next) != ETIMEDOUT)
            ;
        if (hbstop)
            break;
        pthread_mutex_unlock(&hbmu);
        struct enc e;
        frame_head(&e, 2, F_HEARTBEAT, 0);
        int rc = send_small(&e, NULL, 0);
        pthread_mutex_lock(&hbmu);
        if (rc < 0)
            break;
        clock_gettime(CLOCK_MONOTONIC, &next); /* no catch-up burst after a stall */
    }
    pthread_mutex_unlock(&hbmu);
    return NULL;
}

/* ---- the loop ---------------------------------------------------------- */

static void wait_handlers(long ms) {
    struct timespec until;
    clock_gettime(CLOCK_MONOTONIC, &until);
    until.tv_sec += ms / 1000;
    until.tv_nsec += (ms % 1000) * 1000000L;
    if (until.tv_nsec >= 1000000000L) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000L;
    }
    pthread_mutex_lock(&mu);
    while (active > 0)
        if (pthread_cond_timedwait(&cond, &mu, &until) == ETIMEDOUT)
            break;
    pthread_mutex_unlock(&mu);
}

/* pause_reading holds the reader while too much body waits for handlers
 * that are not reading it: the rest stays in the socket, and the engine's
 * flow control holds the sender. A handler waiting for input, or the
 * engine hanging up, ends the pause. */
static void pause_reading(void) {
    pthread_mutex_lock(&mu);
    while (unread > MAX_UNREAD && input_waiters == 0) {
        struct timespec until;
        clock_gettime(CLOCK_MONOTONIC, &until);
        until.tv_nsec += 200 * 1000000L;
        if (until.tv_nsec >= 1000000000L) {
            until.tv_sec++;
            until.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&cond, &mu, &until);
        struct pollfd p = {.fd = sock, .events = POLLRDHUP};
        if (poll(&p, 1, 0) > 0 && (p.revents & (POLLRDHUP | POLLHUP | POLLERR)))
            break; /* the engine is gone or leaving: read to the end */
    }
    pthread_mutex_unlock(&mu);
}

static int connect_engine(void) {
    const char *path = getenv("COCAINE_SOCKET");
    const char *id = getenv("COCAINE_SLAVE_ID");
    if (!path || !*path || !id || !*id) {
        logf_("COCAINE_SOCKET and COCAINE_SLAVE_ID must be set: a cocaine engine starts this program");
        return -1;
    }
    const char *hb = getenv("COCAINE_HEARTBEAT_MS");
    if (hb) {
        char *end;
        long v = strtol(hb, &end, 10);
        if (*hb && !*end && v > 0)
            period_ms = v;
    }
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(path) >= sizeof a.sun_path) {
        logf_("socket path too long: %s", path);
        return -1;
    }
    strcpy(a.sun_path, path);
    sock = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (sock < 0 || connect(sock, (struct sockaddr *)&a, sizeof a) < 0) {
        logf_("connect to the engine at %s: %s", path, strerror(errno));
        return -1;
    }
    /* [1, 0, id, pid, version]: the id sits between the head and the
     * numbers, so the frame is built in a buffer of its own. */
    size_t n = strlen(id);
    if (n > 255) {
        logf_("COCAINE_SLAVE_ID too long");
        return -1;
    }
    struct enc head, tail = {.n = 0};
    frame_head(&head, 5, F_HANDSHAKE, 0);
    put_strhead(&head, n);
    put_uint(&tail, (uint64_t)getpid());
    put_uint(&tail, PROTO_VERSION);
    unsigned char buf[sizeof head.b + 255 + sizeof tail.b];
    size_t k = 0;
    memcpy(buf, head.b, head.n);
    k = head.n;
    memcpy(buf + k, id, n);
    k += n;
    memcpy(buf + k, tail.b, tail.n);
    k += tail.n;
    uint32_t plen = (uint32_t)(k - 4);
    buf[0] = (unsigned char)(plen >> 24);
    buf[1] = (unsigned char)(plen >> 16);
    buf[2] = (unsigned char)(plen >> 8);
    buf[3] = (unsigned char)plen;
    struct iovec iov = {buf, k};
    if (send_iov(&iov, 1) < 0) {
        logf_("handshake: %s", strerror(errno));
        return -1;
    }
    return 0;
}

int cocaine_run(void) {
    /* The app's output is its log, read line by line. */
    setvbuf(stdout, NULL, _IOLBF, 0);
    if (connect_engine() < 0)
        return 2;

    pthread_condattr_t ca;
    pthread_condattr_init(&ca);
    pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
    pthread_cond_init(&hbcond, &ca);
    pthread_cond_destroy(&cond);
    pthread_cond_init(&cond, &ca);
    pthread_condattr_destroy(&ca);
    pthread_t hbt;
    if (pthread_create(&hbt, NULL, heartbeat, NULL) != 0) {
        logf_("cannot start the heartbeat thread");
        return 2;
    }

    /* Frames come through a buffer that grows to the largest frame seen. */
    size_t cap = 64 << 10;
    unsigned char *buf = malloc(cap);
    size_t have = 0;
    int status = 1;
    const char *why = NULL;
    for (;;) {
        if (!buf) {
            why = "out of memory";
            break;
        }
        /* Parse every complete frame in the buffer. */
        size_t off = 0;
        int bad = 0;
        while (have - off >= 4) {
            uint32_t n = (uint32_t)buf[off] << 24 | (uint32_t)buf[off + 1] << 16 | (uint32_t)buf[off + 2] << 8 | buf[off + 3];
            if (n > MAX_FRAME) {
                bad = 1;
                break;
            }
            if (have - off - 4 < n) {
                if (n + 4 > cap) {
                    memmove(buf, buf + off, have - off);
                    have -= off;
                    off = 0;
                    cap = n + 4;
                    unsigned char *b = realloc(buf, cap);
                    if (!b) {
                        free(buf);
                        buf = NULL;
                    } else
                        buf = b;
                }
                break;
            }
            if (route(buf + off + 4, n) < 0) {
                bad = 1;
                break;
            }
            off += 4 + n;
        }
        if (bad) {
            why = "a frame that breaks the protocol";
            break;
        }
        if (!buf)
            continue;
        memmove(buf, buf + off, have - off);
        have -= off;
        pause_reading();
        ssize_t r = read(sock, buf + have, cap - have);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0) {
            pthread_mutex_lock(&mu);
            int term = terminating && active == 0;
            pthread_mutex_unlock(&mu);
            if (term) {
                status = 0;
            } else {
                why = r < 0 ? strerror(errno) : "engine closed the connection";
            }
            break;
        }
        have += (size_t)r;
    }
    free(buf);

    if (status == 0) {
        if (send_str_frame(3, F_TERMINATE, 0, 0, "terminated by engine") < 0)
            status = 1;
    } else {
        logf_("reading from the engine: %s", why);
        /* Cancel what runs; nobody will read the answers. */
        pthread_mutex_lock(&mu);
        for (struct cocaine_session *s = sessions; s; s = s->next)
            cancel_locked(s, "engine gone");
        pthread_cond_broadcast(&cond);
        pthread_mutex_unlock(&mu);
        wait_handlers(GONE_GRACE_MS);
        pthread_mutex_lock(&mu);
        int left = active;
        pthread_mutex_unlock(&mu);
        if (left > 0) {
            /* A handler that ignores cancellation must not keep an orphan alive. */
            fflush(stdout);
            fflush(stderr);
            _exit(1);
        }
    }
    pthread_mutex_lock(&hbmu);
    hbstop = 1;
    pthread_cond_signal(&hbcond);
    pthread_mutex_unlock(&hbmu);
    pthread_join(hbt, NULL);
    close(sock);
    fflush(stdout);
    return status;
}
