/* The baseline C hello of bench/languages.sh: a libfcgi responder on a
 * Unix socket, two processes, as a C web app is usually deployed behind
 * nginx. Usage: fcgi-hello SOCKET */
#include <fcgiapp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <unistd.h>

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s SOCKET\n", argv[0]);
        return 2;
    }
    FCGX_Init();
    int sock = FCGX_OpenSocket(argv[1], 128);
    if (sock < 0) {
        perror("FCGX_OpenSocket");
        return 1;
    }
    chmod(argv[1], 0666); /* nginx workers run as another user */
    fork();               /* two processes accept on the socket */
    FCGX_Request r;
    FCGX_InitRequest(&r, sock, 0);
    while (FCGX_Accept_r(&r) >= 0) {
        FCGX_PutS("Content-Type: text/plain\r\n\r\nHello, World!\n", r.out);
        FCGX_Finish_r(&r);
    }
    return 0;
}
