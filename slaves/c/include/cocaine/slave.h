/*
 * libcocaine-slave: write cocaine apps in C.
 *
 * An app registers a handler per event and hands control to the library:
 *
 *     #include <cocaine/slave.h>
 *
 *     static int echo(cocaine_request *req, cocaine_response *resp, void *data) {
 *         const void *p;
 *         size_t n;
 *         int r;
 *         while ((r = cocaine_request_next(req, &p, &n)) > 0)
 *             if (cocaine_response_write(resp, p, n) < 0)
 *                 return -1;
 *         return r;              // 0: the answer ends; -1: cancelled
 *     }
 *
 *     int main(void) {
 *         cocaine_handle("echo", echo, NULL);
 *         return cocaine_run();
 *     }
 *
 * cocaine_run speaks the engine <-> slave protocol (docs/protocol.md): it
 * connects to the socket named in COCAINE_SOCKET, sends the handshake,
 * sends heartbeats from a thread of its own (so a long handler never looks
 * dead), runs each session's handler on a thread of its own with its
 * request streaming in, and returns when the engine says terminate, after
 * the running handlers end.
 *
 * Every function below may be called from any handler thread. Data is
 * bytes: bodies may hold NUL bytes and need not be text.
 */
#ifndef COCAINE_SLAVE_H
#define COCAINE_SLAVE_H

#include <stddef.h>
#include <sys/types.h>

#ifdef __cplusplus
extern "C" {
#endif

/* The request of one session: its event and its body, readable as it arrives. */
typedef struct cocaine_session cocaine_request;
/* The answer of the same session. */
typedef struct cocaine_session cocaine_response;

/*
 * A handler serves one session. It returns 0 for success: what it wrote is
 * the answer, and the session ends. Any other value without an answered
 * error (cocaine_response_error) ends the session with error 502.
 */
typedef int (*cocaine_handler)(cocaine_request *req, cocaine_response *resp, void *data);

/* Codes of the protocol's error table (docs/protocol.md). */
enum {
    COCAINE_BAD_REQUEST = 400,
    COCAINE_NOT_FOUND = 404,
    COCAINE_SERVER_ERROR = 500,
    COCAINE_APP_ERROR = 502,
    COCAINE_UNAVAILABLE = 503,
};

/*
 * cocaine_handle makes fn serve event; data is passed to every call. Call
 * it before cocaine_run. Returns 0, or -1 when out of memory.
 */
int cocaine_handle(const char *event, cocaine_handler fn, void *data);

/*
 * cocaine_run serves the engine named in the environment until it says
 * terminate (returns 0) or goes away (returns 1); a setup error (no
 * COCAINE_SOCKET, cannot connect) is logged to stderr and returns 2.
 * Return its result from main.
 */
int cocaine_run(void);

/* The session's event name. */
const char *cocaine_request_event(const cocaine_request *req);

/*
 * cocaine_request_next hands out the next piece of the body as the engine
 * forwarded it: 1 with *data and *len set (valid until the next read of
 * this request), 0 at the end of the body, -1 when the session was
 * cancelled. It blocks until one of those is known.
 */
int cocaine_request_next(cocaine_request *req, const void **data, size_t *len);

/*
 * cocaine_request_read copies up to n bytes of the body into buf: the
 * number copied (at least 1, blocking until a byte arrives), 0 at the end
 * of the body, -1 when the session was cancelled.
 */
ssize_t cocaine_request_read(cocaine_request *req, void *buf, size_t n);

/*
 * cocaine_request_read_all reads the rest of the body into memory the
 * caller frees, NUL-terminated for convenience (the NUL is not counted in
 * *len). NULL when the session was cancelled or memory ran out.
 */
void *cocaine_request_read_all(cocaine_request *req, size_t *len);

/*
 * The engine cancels a session when its deadline passes, its timeout
 * fires or the caller goes away. Reads and writes then fail; a handler
 * busy elsewhere checks cocaine_request_cancelled or sleeps with
 * cocaine_request_wait_cancelled, which returns 1 as soon as the session
 * is cancelled, or 0 after ms milliseconds.
 */
int cocaine_request_cancelled(const cocaine_request *req);
int cocaine_request_wait_cancelled(cocaine_request *req, long ms);

/*
 * cocaine_response_write adds bytes to the answer. They are buffered up to
 * 64 KiB and then sent as a chunk; cocaine_response_flush sends what is
 * buffered now (streaming answers call it after each piece). Both return 0,
 * or -1 when the session was cancelled, already ended or the engine is gone.
 */
int cocaine_response_write(cocaine_response *resp, const void *data, size_t len);
int cocaine_response_flush(cocaine_response *resp);

/*
 * cocaine_response_error ends the session with an error code (400, 404,
 * 502, ...) and a short message for the caller, after what was buffered.
 * The library also logs it on stderr, the app's log. Returns 0 or -1.
 */
int cocaine_response_error(cocaine_response *resp, int code, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 3, 4)))
#endif
    ;

/*
 * cocaine_response_close ends the answer now; the last chunk and the end
 * leave in one write. Returning 0 from the handler does the same.
 */
int cocaine_response_close(cocaine_response *resp);

#ifdef __cplusplus
}
#endif

#endif /* COCAINE_SLAVE_H */
