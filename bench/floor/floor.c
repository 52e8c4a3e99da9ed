/*
 * floor: what one loopback TCP write of one event costs the kernel on this
 * box, in the shape of scenario 2 (fan-out), with no server around it.
 *
 * A writer process accepts n connections from a reader process and, rate
 * times a second, writes one event to each of them: one HTTP chunk
 * ("<hex size>\r\n", the bytes, "\r\n") in one sendmsg of three iovecs,
 * as sserelay's writers do, on sockets with TCP_NODELAY, from a process
 * with a second thread (so that the kernel takes a reference on the file
 * at each call, as in any threaded server).  The reader is sseload's
 * shape: one thread, one epoll set, a read for each ready socket.
 *
 * It prints one JSON line: the writes, the writer thread's CPU seconds
 * (user and system, getrusage RUSAGE_THREAD) and their quotient in
 * microseconds per write.  On loopback the receiving side's TCP work
 * (the softirq that queues the segment and wakes the reader) runs on the
 * sending thread and is counted there, as it is for a server.  No server
 * that sends each event in its own write can spend less per event.
 *
 * usage: floor [-n streams] [-r msg/s] [-d seconds] [-b bytes per event]
 */

#define _GNU_SOURCE
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <sys/wait.h>

#include <netinet/in.h>
#include <netinet/tcp.h>

#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static void
die(const char *what)
{
	fprintf(stderr, "floor: %s: %s\n", what, strerror(errno));
	exit(1);
}

static double
now(void)
{
	struct timespec	 t;

	clock_gettime(CLOCK_MONOTONIC, &t);
	return t.tv_sec + t.tv_nsec / 1e9;
}

static double
thread_cpu(void)
{
	struct rusage	 ru;

	if (getrusage(RUSAGE_THREAD, &ru) == -1)
		die("getrusage");
	return ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 +
	    ru.ru_stime.tv_sec + ru.ru_stime.tv_usec / 1e6;
}

static void *
idle(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* the reader: connect n sockets, then read whatever comes until EOF */
static void
reader(const struct sockaddr_in *sa, int n, int ready)
{
	struct epoll_event	 ev, evs[1024];
	static char		 buf[65536];
	int			 ep, fd, i, k, open = n;
	ssize_t			 r;

	if ((ep = epoll_create1(0)) == -1)
		die("epoll_create1");
	for (i = 0; i < n; i++) {
		if ((fd = socket(AF_INET, SOCK_STREAM, 0)) == -1)
			die("socket");
		if (connect(fd, (const struct sockaddr *)sa, sizeof(*sa)) == -1)
			die("connect");
		ev.events = EPOLLIN;
		ev.data.fd = fd;
		if (epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == -1)
			die("epoll_ctl");
	}
	if (write(ready, "r", 1) != 1)
		die("write");
	while (open > 0) {
		if ((k = epoll_wait(ep, evs, 1024, -1)) == -1) {
			if (errno == EINTR)
				continue;
			die("epoll_wait");
		}
		for (i = 0; i < k; i++) {
			r = read(evs[i].data.fd, buf, sizeof(buf));
			if (r == 0 || (r == -1 && errno != EAGAIN &&
			    errno != EINTR)) {
				close(evs[i].data.fd);
				open--;
			}
		}
	}
	_exit(0);
}

int
main(int argc, char **argv)
{
	struct sockaddr_in	 sa;
	socklen_t		 sl = sizeof(sa);
	struct iovec		 iov[3];
	struct msghdr		 msg;
	struct timespec		 ts;
	pthread_t		 t;
	char			 hdr[16], *body, c;
	double			 rate = 20, secs = 8, t0, next, d, cpu;
	long			 writes = 0, failed = 0;
	int			 n = 10000, bytes = 192, one = 1, ls, ch, i;
	int			 pipefd[2], *fd, status;
	pid_t			 pid;

	while ((ch = getopt(argc, argv, "n:r:d:b:")) != -1) {
		switch (ch) {
		case 'n': n = atoi(optarg); break;
		case 'r': rate = atof(optarg); break;
		case 'd': secs = atof(optarg); break;
		case 'b': bytes = atoi(optarg); break;
		default:
			fprintf(stderr, "usage: floor [-n streams] [-r msg/s] "
			    "[-d seconds] [-b bytes per event]\n");
			return 2;
		}
	}
	if (n < 1 || rate <= 0 || secs <= 0 || bytes < 16 || bytes > 65536) {
		fprintf(stderr, "floor: -n, -r, -d must be positive, -b 16 to "
		    "65536\n");
		return 2;
	}

	memset(&sa, 0, sizeof(sa));
	sa.sin_family = AF_INET;
	sa.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	if ((ls = socket(AF_INET, SOCK_STREAM, 0)) == -1 ||
	    bind(ls, (struct sockaddr *)&sa, sizeof(sa)) == -1 ||
	    listen(ls, 4096) == -1 ||
	    getsockname(ls, (struct sockaddr *)&sa, &sl) == -1 ||
	    pipe(pipefd) == -1)
		die("listen");
	if ((pid = fork()) == -1)
		die("fork");
	if (pid == 0) {
		close(ls);
		close(pipefd[0]);
		reader(&sa, n, pipefd[1]);
	}
	close(pipefd[1]);

	if ((fd = calloc(n, sizeof(*fd))) == NULL)
		die("calloc");
	for (i = 0; i < n; i++) {
		if ((fd[i] = accept(ls, NULL, NULL)) == -1)
			die("accept");
		setsockopt(fd[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	if (read(pipefd[0], &c, 1) != 1)
		die("reader");
	if ((errno = pthread_create(&t, NULL, idle, NULL)) != 0)
		die("pthread_create");

	/* one event: "<hex>\r\n", bytes - framing of "data: x...\n\n", "\r\n" */
	i = snprintf(hdr, sizeof(hdr), "%x\r\n", bytes);
	bytes -= i + 2;
	if ((body = malloc(bytes)) == NULL)
		die("malloc");
	memset(body, 'x', bytes);
	memcpy(body, "data: ", 6);
	body[bytes - 2] = body[bytes - 1] = '\n';
	snprintf(hdr, sizeof(hdr), "%x\r\n", bytes);
	iov[0].iov_base = hdr;
	iov[0].iov_len = strlen(hdr);
	iov[1].iov_base = body;
	iov[1].iov_len = bytes;
	iov[2].iov_base = "\r\n";
	iov[2].iov_len = 2;
	memset(&msg, 0, sizeof(msg));
	msg.msg_iov = iov;
	msg.msg_iovlen = 3;

	t0 = next = now();
	cpu = thread_cpu();
	while (now() - t0 < secs) {
		for (i = 0; i < n; i++) {
			if (sendmsg(fd[i], &msg, MSG_NOSIGNAL) > 0)
				writes++;
			else
				failed++;
		}
		next += 1.0 / rate;
		if ((d = next - now()) > 0) {
			ts.tv_sec = (time_t)d;
			ts.tv_nsec = (long)((d - ts.tv_sec) * 1e9);
			nanosleep(&ts, NULL);
		}
	}
	cpu = thread_cpu() - cpu;
	d = now() - t0;

	for (i = 0; i < n; i++)
		close(fd[i]);
	if (waitpid(pid, &status, 0) == -1)
		die("waitpid");
	printf("{\"streams\": %d, \"rate\": %g, \"bytes\": %d, \"elapsed_s\": "
	    "%.3f, \"writes\": %ld, \"failed\": %ld, \"writer_cpu_s\": %.3f, "
	    "\"us_per_write\": %.3f}\n", n, rate, bytes + (int)iov[0].iov_len +
	    2, d, writes, failed, cpu, writes ? cpu * 1e6 / writes : 0.0);
	return failed != 0 || !WIFEXITED(status) || WEXITSTATUS(status) != 0;
}
