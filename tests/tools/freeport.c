/* freeport: print a TCP port on 127.0.0.1 that was free a moment ago.
 * Tests use it to start redis-server, which cannot report a port 0 bind. */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <sys/socket.h>
#include <unistd.h>

int main(void) {
    struct sockaddr_in sa = {0};
    socklen_t len = sizeof(sa);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    if (fd < 0) return perror("socket"), 1;
    sa.sin_family = AF_INET;
    sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&sa, sizeof(sa)) < 0 ||
        getsockname(fd, (struct sockaddr *)&sa, &len) < 0)
        return perror("bind"), 1;
    printf("%d\n", ntohs(sa.sin_port));
    close(fd);
    return 0;
}
