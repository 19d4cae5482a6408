/* The conformance app of slaves/conformance, in C. */
#include <cocaine/slave.h>

#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int echo(cocaine_request *req, cocaine_response *resp, void *data) {
    const void *p;
    size_t n;
    int r;
    (void)data;
    while ((r = cocaine_request_next(req, &p, &n)) > 0)
        if (cocaine_response_write(resp, p, n) < 0)
            return -1;
    return r;
}

static int sleep_(cocaine_request *req, cocaine_response *resp, void *data) {
    size_t n;
    (void)data;
    char *body = cocaine_request_read_all(req, &n);
    if (!body)
        return -1;
    char *end;
    long ms = strtol(body, &end, 10);
    int bad = end == body || *end != 0 || ms < 0;
    free(body);
    if (bad)
        return cocaine_response_error(resp, COCAINE_BAD_REQUEST, "sleep: body must be milliseconds");
    if (cocaine_request_wait_cancelled(req, ms))
        return -1;
    return cocaine_response_write(resp, "ok", 2);
}

static int stream_upper(cocaine_request *req, cocaine_response *resp, void *data) {
    const void *p;
    size_t n;
    int r;
    (void)data;
    while ((r = cocaine_request_next(req, &p, &n)) > 0) {
        char *up = malloc(n);
        if (!up)
            return -1;
        for (size_t i = 0; i < n; i++)
            up[i] = (char)toupper(((const unsigned char *)p)[i]);
        int w = cocaine_response_write(resp, up, n);
        free(up);
        if (w < 0 || cocaine_response_flush(resp) < 0)
            return -1;
    }
    return r;
}

static int fail(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)req;
    (void)data;
    return cocaine_response_error(resp, COCAINE_APP_ERROR, "failing on purpose");
}

/* count answers the length of its body, which it reads only once the file
 * named by $COUNT_GATE exists: the test of the library's read-ahead cap. */
static int count(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)data;
    const char *gate = getenv("COUNT_GATE");
    while (gate && access(gate, F_OK) != 0)
        if (cocaine_request_wait_cancelled(req, 10))
            return -1;
    size_t n;
    char *body = cocaine_request_read_all(req, &n);
    if (!body)
        return -1;
    free(body);
    char out[32];
    int k = snprintf(out, sizeof out, "%zu", n);
    return cocaine_response_write(resp, out, (size_t)k);
}

/* flood answers 1 KiB every 10 ms until a write fails. It deliberately never
 * checks for cancellation: only the library failing its writes once the
 * engine cancelled the session stops it (conformance case cancel-streaming). */
static int flood(cocaine_request *req, cocaine_response *resp, void *data) {
    char buf[1024];
    (void)req;
    (void)data;
    memset(buf, 'x', sizeof buf);
    for (;;) {
        if (cocaine_response_write(resp, buf, sizeof buf) < 0 || cocaine_response_flush(resp) < 0)
            return -1;
        usleep(10 * 1000);
    }
}

int main(void) {
    cocaine_handle("echo", echo, NULL);
    cocaine_handle("sleep", sleep_, NULL);
    cocaine_handle("stream-upper", stream_upper, NULL);
    cocaine_handle("fail", fail, NULL);
    cocaine_handle("count", count, NULL);
    cocaine_handle("flood", flood, NULL);
    return cocaine_run();
}
