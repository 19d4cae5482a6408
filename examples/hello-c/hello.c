/* A C app: built by the c sandbox at deploy, linked with libcocaine-slave.
 *
 *   bin/cocaine call hello-c/hello
 *   head -c 5000000 /dev/urandom | bin/cocaine call hello-c/echo | wc -c
 *   bin/cocaine call hello-c/stream
 */
#include <cocaine/slave.h>

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

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

/* stream sends three parts 300 ms apart, each as soon as it is ready. A
 * body naming a file makes part 1 wait for that file instead (tests use
 * it to prove part 0 arrived while the handler still ran). */
static int stream(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)data;
    size_t n;
    char *gate = cocaine_request_read_all(req, &n);
    if (!gate)
        return -1;
    int rc = 0;
    for (int i = 0; i < 3 && rc == 0; i++) {
        char line[32];
        int k = snprintf(line, sizeof line, "part %d\n", i);
        if (cocaine_response_write(resp, line, (size_t)k) < 0 || cocaine_response_flush(resp) < 0)
            rc = -1;
        else if (i == 0 && n > 0) {
            for (int waited = 0; access(gate, F_OK) != 0 && waited < 60000; waited += 10)
                if (cocaine_request_wait_cancelled(req, 10))
                    rc = -1;
        } else if (i < 2 && n == 0 && cocaine_request_wait_cancelled(req, 300))
            rc = -1;
    }
    free(gate);
    return rc;
}

/* slow sleeps for the milliseconds in the body (default 1000), stopping
 * early when the caller gives up. "MS DIR" also leaves a file named for
 * this process's pid in DIR: tests kill the slave that runs the request. */
static int slow(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)data;
    size_t n;
    char *body = cocaine_request_read_all(req, &n);
    if (!body)
        return -1;
    char *rest;
    long ms = n ? strtol(body, &rest, 10) : 1000;
    if (n && *rest == ' ') {
        char mark[4096];
        snprintf(mark, sizeof mark, "%s/%d", rest + 1, (int)getpid());
        FILE *f = fopen(mark, "w");
        if (f)
            fclose(f);
    }
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
