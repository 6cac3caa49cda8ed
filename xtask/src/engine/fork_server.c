/* The other half of fork_server.rs: LD_PRELOADed into a dynamically linked
 * program (clang), it takes over before main.  Once the dynamic loader has
 * relocated every library and all constructors have run, it serves requests
 * from the listening socket on fd $XTASK_FORK_SERVER_FD.  Each request is
 * argv; a forked child runs the program's own main on it, with stdout and
 * stderr on the connection.  When the child ends, the server appends a
 * 16-byte trailer (magic, wait status, the child's CPU time in microseconds:
 * the client cannot see it, as the server reaps the child) and closes the
 * connection.  EOF on stdin
 * means the client is gone: the server kills what still runs and exits.
 *
 * Without $XTASK_FORK_SERVER_FD the program runs as if nothing were preloaded.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

typedef int (*main_fn)(int, char **, char **);
typedef int (*start_fn)(main_fn, int, char **, void (*)(void), void (*)(void),
                        void (*)(void), void *);

#define TRAILER_MAGIC 0x4b534154u /* "TASK" */
#define MAX_JOBS 256
#define MAX_REQUEST (16u << 20)

static main_fn real_main;
static int wake_write = -1;
static struct job {
    pid_t pid;
    int conn;
} jobs[MAX_JOBS];

static void on_child(int sig)
{
    int saved = errno;
    (void)sig;
    (void)!write(wake_write, "c", 1);
    errno = saved;
}

static int read_all(int fd, void *buf, size_t n)
{
    char *p = buf;
    while (n) {
        ssize_t r = read(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return -1;
        p += r;
        n -= (size_t)r;
    }
    return 0;
}

static void write_all(int fd, const void *buf, size_t n)
{
    const char *p = buf;
    while (n) {
        ssize_t r = write(fd, p, n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r <= 0)
            return;
        p += r;
        n -= (size_t)r;
    }
}

static void finish(int conn, uint32_t status, uint64_t cpu_us)
{
    struct {
        uint32_t magic, status;
        uint64_t cpu_us;
    } trailer = { TRAILER_MAGIC, status, cpu_us };
    write_all(conn, &trailer, sizeof trailer);
    close(conn);
}

/* The child: never returns. */
static void run_child(int conn, int listen_fd, int wake[2], char *request, uint32_t len)
{
    int argc = 0, devnull;
    char **argv;
    uint32_t i, off;

    signal(SIGCHLD, SIG_DFL);
    close(listen_fd);
    close(wake[0]);
    close(wake[1]);
    /* Another job's connection must close when that job ends, not when this one does. */
    for (i = 0; i < MAX_JOBS; i++)
        if (jobs[i].pid)
            close(jobs[i].conn);
    devnull = open("/dev/null", O_RDONLY);
    dup2(devnull, 0);
    close(devnull);
    dup2(conn, 1);
    dup2(conn, 2);
    close(conn);

    for (i = 0; i < len; i++)
        argc += request[i] == 0;
    argv = calloc((size_t)argc + 1, sizeof *argv);
    for (i = 0, off = 0; (int)i < argc; i++) {
        argv[i] = request + off;
        off += (uint32_t)strlen(request + off) + 1;
    }
    exit(real_main(argc, argv, environ));
}

static void accept_one(int listen_fd, int wake[2])
{
    uint32_t len;
    char *request;
    int slot, conn = accept4(listen_fd, NULL, NULL, SOCK_CLOEXEC);
    pid_t pid;

    if (conn < 0)
        return;
    if (read_all(conn, &len, sizeof len) || len == 0 || len > MAX_REQUEST ||
        !(request = malloc(len + 1))) {
        finish(conn, 0x7f00, 0);
        return;
    }
    if (read_all(conn, request, len) || request[len - 1] != 0) {
        free(request);
        finish(conn, 0x7f00, 0);
        return;
    }
    for (slot = 0; slot < MAX_JOBS && jobs[slot].pid; slot++)
        ;
    pid = slot < MAX_JOBS ? fork() : -1;
    if (pid == 0)
        run_child(conn, listen_fd, wake, request, len);
    free(request);
    if (pid < 0) {
        finish(conn, 0x7f00, 0);
        return;
    }
    jobs[slot].pid = pid;
    jobs[slot].conn = conn;
}

static void reap(int wake_read)
{
    char drain[64];
    int status, i;
    struct rusage usage;
    uint64_t cpu_us;
    pid_t pid;

    while (read(wake_read, drain, sizeof drain) > 0)
        ;
    while ((pid = wait4(-1, &status, WNOHANG, &usage)) > 0)
        for (i = 0; i < MAX_JOBS; i++)
            if (jobs[i].pid == pid) {
                cpu_us = (uint64_t)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) * 1000000 +
                         (uint64_t)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec);
                finish(jobs[i].conn, (uint32_t)status, cpu_us);
                jobs[i].pid = 0;
                break;
            }
}

static int serve(int listen_fd)
{
    struct sigaction child = { 0 };
    int wake[2], devnull, i;

    if (pipe2(wake, O_CLOEXEC | O_NONBLOCK))
        return 111;
    wake_write = wake[1];
    child.sa_handler = on_child;
    child.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaction(SIGCHLD, &child, NULL);

    /* Ready: the client waits for this byte before it connects. */
    write_all(1, "R", 1);
    devnull = open("/dev/null", O_WRONLY);
    dup2(devnull, 1);
    close(devnull);

    for (;;) {
        struct pollfd fds[3] = {
            { listen_fd, POLLIN, 0 }, { wake[0], POLLIN, 0 }, { 0, POLLIN, 0 }
        };
        if (poll(fds, 3, -1) < 0) {
            if (errno == EINTR)
                continue;
            return 112;
        }
        if (fds[1].revents)
            reap(wake[0]);
        if (fds[2].revents) {
            for (i = 0; i < MAX_JOBS; i++)
                if (jobs[i].pid)
                    kill(jobs[i].pid, SIGKILL);
            _exit(0);
        }
        if (fds[0].revents)
            accept_one(listen_fd, wake);
    }
}

static int server_or_main(int argc, char **argv, char **envp)
{
    const char *fd = getenv("XTASK_FORK_SERVER_FD");
    int listen_fd;

    if (!fd)
        return real_main(argc, argv, envp);
    listen_fd = atoi(fd);
    /* The jobs must see the environment the program would have seen. */
    unsetenv("XTASK_FORK_SERVER_FD");
    unsetenv("LD_PRELOAD");
    return serve(listen_fd);
}

int __libc_start_main(main_fn main, int argc, char **argv, void (*init)(void),
                      void (*fini)(void), void (*rtld_fini)(void), void *stack_end)
{
    start_fn real = (start_fn)dlsym(RTLD_NEXT, "__libc_start_main");

    real_main = main;
    return real(server_or_main, argc, argv, init, fini, rtld_fini, stack_end);
}
