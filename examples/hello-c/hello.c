/* A C app: built by the c sandbox at deploy, linked with libcocaine-slave.
 *
 *   bin/cocaine call hello-c/hello
 *   head -c 5000000 /dev/urandom | bin/cocaine call hello-c/echo | wc -c
 *   bin/cocaine call hello-c/stream
 */
#include <cocaine/slave.h>

#include <stdio.h>
#include <stdlib.h>

/* hello answers a greeting. */
static int hello(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)req;
    (void)data;
    const char msg[] = "Hello from C!\n";
    return cocaine_response_write(resp, msg, sizeof msg - 1);
}

/* echo streams the request body back as it arrives, bytes untouched. */
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

/* stream sends three parts 300 ms apart, each as soon as it is ready. */
static int stream(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)data;
    for (int i = 0; i < 3; i++) {
        char line[32];
        int n = snprintf(line, sizeof line, "part %d\n", i);
        if (cocaine_response_write(resp, line, (size_t)n) < 0 || cocaine_response_flush(resp) < 0)
            return -1;
        if (i < 2 && cocaine_request_wait_cancelled(req, 300))
            return -1;
    }
    return 0;
}

/* slow sleeps for the number of milliseconds in the body (default 1000),
 * stopping early when the caller gives up. */
static int slow(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)data;
    size_t n;
    char *body = cocaine_request_read_all(req, &n);
    if (!body)
        return -1;
    long ms = n ? strtol(body, NULL, 10) : 1000;
    free(body);
    if (cocaine_request_wait_cancelled(req, ms))
        return -1;
    return cocaine_response_write(resp, "slept", 5);
}

int main(void) {
    cocaine_handle("hello", hello, NULL);
    cocaine_handle("echo", echo, NULL);
    cocaine_handle("stream", stream, NULL);
    cocaine_handle("slow", slow, NULL);
    return cocaine_run();
}
