/* The C hello of bench/languages.sh on an HTTP event: the answer's head
 * {code: 200, headers: [["Content-Type", "text/plain"]]} is MessagePack
 * written out by hand (slaves/python/README.md#http-payload), then the body. */
#include <cocaine/slave.h>

static const char head[] = "\x82\xa4" "code" "\xcc\xc8" "\xa7" "headers" "\x91\x92"
                           "\xac" "Content-Type" "\xaa" "text/plain";
static const char body[] = "Hello, World!\n";

static int hello(cocaine_request *req, cocaine_response *resp, void *data) {
    (void)req;
    (void)data;
    /* The head must be a chunk of its own. */
    if (cocaine_response_write(resp, head, sizeof head - 1) < 0 || cocaine_response_flush(resp) < 0)
        return -1;
    return cocaine_response_write(resp, body, sizeof body - 1);
}

int main(void) {
    cocaine_handle("http", hello, NULL);
    return cocaine_run();
}
