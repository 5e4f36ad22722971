/* An independent load generator for the cross-check in docs/PERFORMANCE.md:
 * C, one thread, one epoll instance, N connections each sending the raw echo
 * request of 16 bytes and waiting for its reply, for a given time. Every
 * reply is compared with the request (in raw framing an echo's reply has the
 * same bytes); a wrong or missing reply is an error.
 *
 *   cc -O2 -o client client.c && ./client PORT CONNS SECONDS
 * prints "<replies per second> req/s <errors> errors". Loopback only. */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define REQ 20
static const unsigned char req[REQ] = {0x0a, 0x12, 0x0a, 0x10, 'a', 'b', 'c', 'd', 'e', 'f',
                                       'g', 'h', 'i', 'j', 'k', 'l', 'm', 'n', 'o', 'p'};

static double now(void) {
	struct timespec t;
	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
	if (argc != 4) {
		fprintf(stderr, "usage: client PORT CONNS SECONDS\n");
		return 2;
	}
	int port = atoi(argv[1]), n = atoi(argv[2]);
	double dur = atof(argv[3]);
	if (n < 1 || n > 10000 || dur <= 0 || dur > 600) {
		fprintf(stderr, "CONNS must be 1..10000 and SECONDS 0..600\n");
		return 2;
	}
	int ep = epoll_create1(0), one = 1;
	int *got = calloc(65536, sizeof *got);
	unsigned char(*buf)[REQ] = calloc(65536, REQ);
	for (int i = 0; i < n; i++) {
		int s = socket(AF_INET, SOCK_STREAM, 0);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
		if (s < 0 || s >= 65536 || connect(s, (void *)&a, sizeof a)) {
			perror("connect");
			return 1;
		}
		setsockopt(s, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		struct epoll_event e = {.events = EPOLLIN, .data.fd = s};
		epoll_ctl(ep, EPOLL_CTL_ADD, s, &e);
		if (write(s, req, REQ) != REQ) {
			perror("write");
			return 1;
		}
	}
	long done = 0, errors = 0;
	double t0 = now(), end = t0 + dur;
	struct epoll_event evs[256];
	while (now() < end) {
		int k = epoll_wait(ep, evs, 256, 100);
		for (int i = 0; i < k; i++) {
			int fd = evs[i].data.fd;
			ssize_t r = read(fd, buf[fd] + got[fd], REQ - got[fd]);
			if (r <= 0) {
				errors++;
				close(fd);
				continue;
			}
			got[fd] += r;
			if (got[fd] < REQ)
				continue;
			got[fd] = 0;
			if (memcmp(buf[fd], req, REQ) != 0) {
				errors++;
				close(fd);
				continue;
			}
			done++;
			if (write(fd, req, REQ) != REQ) {
				errors++;
				close(fd);
			}
		}
	}
	printf("%.0f req/s %ld errors\n", done / (now() - t0), errors);
	return errors != 0;
}
