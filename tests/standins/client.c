/* The runner-side kubectl and helm stand-ins as Jeeves starts them under tests/run: a client of
 * the stand-in server (server.py beside this file, README.md "The server"). Named kubectl or helm,
 * it hands its stdin, stdout and stderr, its arguments, environment and working directory to the
 * server, which runs the same stand-in script in a process forked ready-imported, then exits as
 * that process did: with its exit code, or killed by the same signal. When it is killed itself
 * (Jeeves' deadline, an interrupt), the server's process sees the connection close and ends too.
 *
 * Without LAB_STANDIN_SERVER it runs the script itself: python3 -S STANDINS/<name> ARGS.
 * Built by tests/run: cc -O2 -DSTANDINS='"…/tests/standins"' -o DIR/kubectl client.c */
#define _GNU_SOURCE
#include <errno.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

extern char **environ;

static char *buf;
static size_t len, cap;

static void put(const char *s, size_t n) {
    if (len + n + 1 > cap) {
        cap = (len + n + 1) * 2;
        buf = realloc(buf, cap);
        if (!buf) {
            perror("stand-in client");
            exit(1);
        }
    }
    memcpy(buf + len, s, n);
    len += n;
    buf[len++] = '\0';
}

static void put_str(const char *s) { put(s, strlen(s)); }

int main(int argc, char **argv) {
    const char *slash = strrchr(argv[0], '/');
    const char *tool = slash ? slash + 1 : argv[0];
    const char *path = getenv("LAB_STANDIN_SERVER");
    if (!path || !*path) {
        char script[4096];
        snprintf(script, sizeof script, "%s/%s", STANDINS, tool);
        char **args = calloc((size_t)argc + 3, sizeof *args);
        args[0] = "python3";
        args[1] = "-S";
        args[2] = script;
        for (int i = 1; i < argc; i++) args[i + 2] = argv[i];
        execvp("python3", args);
        fprintf(stderr, "%s: cannot run python3 %s: %s\n", tool, script, strerror(errno));
        return 127;
    }

    /* tool, cwd, the argument count and arguments, then the environment, NUL-separated. */
    char cwd[4096];
    if (!getcwd(cwd, sizeof cwd)) {
        fprintf(stderr, "%s: getcwd: %s\n", tool, strerror(errno));
        return 1;
    }
    put_str(tool);
    put_str(cwd);
    char count[16];
    snprintf(count, sizeof count, "%d", argc - 1);
    put_str(count);
    for (int i = 1; i < argc; i++) put_str(argv[i]);
    for (char **e = environ; *e; e++) put_str(*e);

    int s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    strncpy(addr.sun_path, path, sizeof addr.sun_path - 1);
    if (s < 0 || connect(s, (struct sockaddr *)&addr, sizeof addr) < 0) {
        fprintf(stderr, "%s: the stand-in server %s does not answer: %s\n", tool, path, strerror(errno));
        return 1;
    }
    /* The length first, with the three descriptors; then the rest. */
    uint32_t n = (uint32_t)len;
    struct iovec iov = {.iov_base = &n, .iov_len = sizeof n};
    union {
        char bytes[CMSG_SPACE(3 * sizeof(int))];
        struct cmsghdr align;
    } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.bytes,
                         .msg_controllen = sizeof control.bytes};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(3 * sizeof(int));
    int fds[3] = {0, 1, 2};
    memcpy(CMSG_DATA(c), fds, sizeof fds);
    if (sendmsg(s, &msg, 0) != (ssize_t)sizeof n) {
        fprintf(stderr, "%s: cannot reach the stand-in server: %s\n", tool, strerror(errno));
        return 1;
    }
    for (size_t off = 0; off < len;) {
        ssize_t w = write(s, buf + off, len - off);
        if (w < 0 && errno == EINTR) continue;
        if (w <= 0) {
            fprintf(stderr, "%s: cannot reach the stand-in server: %s\n", tool, strerror(errno));
            return 1;
        }
        off += (size_t)w;
    }

    /* "exit N" or "signal N", once the stand-in's process has ended. */
    char answer[64];
    size_t got = 0;
    while (got < sizeof answer - 1) {
        ssize_t r = read(s, answer + got, sizeof answer - 1 - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
        if (memchr(answer, '\n', got)) break;
    }
    answer[got] = '\0';
    int value;
    if (sscanf(answer, "exit %d", &value) == 1) return value;
    if (sscanf(answer, "signal %d", &value) == 1) {
        signal(value, SIG_DFL);
        raise(value);
        return 128 + value;
    }
    fprintf(stderr, "%s: the stand-in server gave no exit status (%s)\n", tool, got ? answer : "it closed the connection");
    return 1;
}
