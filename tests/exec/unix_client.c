/*
 * A tiny client for unix sockets, linked statically and copied into the
 * busybox rootfs (whose nc has no unix sockets): sends stdin to the
 * socket $1, then prints what comes back.
 */
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

int main(int argc, char **argv)
{
    struct sockaddr_un sa = {.sun_family = AF_UNIX};
    char buf[4096];
    ssize_t n;
    int fd;

    if (argc != 2 || strlen(argv[1]) >= sizeof(sa.sun_path)) {
        fprintf(stderr, "usage: unix_client SOCKET\n");
        return 2;
    }
    strcpy(sa.sun_path, argv[1]);
    fd = socket(AF_UNIX, SOCK_STREAM, 0);
    if (fd < 0 || connect(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0) {
        perror(argv[1]);
        return 1;
    }
    while ((n = read(0, buf, sizeof(buf))) > 0) {
        if (write(fd, buf, (size_t)n) != n) {
            return 1;
        }
    }
    shutdown(fd, SHUT_WR);
    while ((n = read(fd, buf, sizeof(buf))) > 0) {
        if (write(1, buf, (size_t)n) != n) {
            return 1;
        }
    }
    return 0;
}
