/* lbflow - the optional steering socket: see steer.h for the protocol. */
#if !defined(_POSIX_C_SOURCE) || _POSIX_C_SOURCE < 200112L
#undef _POSIX_C_SOURCE
#define _POSIX_C_SOURCE 200112L /* gethostname, poll, getsockname */
#endif

#include "steer.h"

#include <errno.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#ifdef _WIN32

steer_t *steer_open(int port, char *err, size_t errlen)
{
    (void)port;
    snprintf(err, errlen, "--steer-port: steering is not supported on this platform");
    return NULL;
}
int steer_poll(steer_t *s, long step, double *force, int *stop, steer_flow_fn flow, void *ctx)
{
    (void)s, (void)step, (void)force, (void)stop, (void)flow, (void)ctx;
    return 0;
}
int steer_port(const steer_t *s) { (void)s; return 0; }
const char *steer_host(const steer_t *s) { (void)s; return ""; }
void steer_write_json(FILE *fp, const steer_t *s, double f) { (void)s, (void)f; fputs("null", fp); }
void steer_close(steer_t *s) { (void)s; }

#else

#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#define STEER_MAX_CLIENTS 8
#define STEER_LINE 256

typedef struct {
    int fd;
    size_t len;
    char buf[STEER_LINE];
} client_t;

typedef struct {
    long step;
    double force;
} change_t;

struct steer {
    int listen_fd;
    int port;
    char host[256];
    client_t clients[STEER_MAX_CLIENTS];
    change_t *changes;
    size_t n_changes, cap_changes;
    long stopped_at; /* -1 when no stop was asked */
    long commands;
};

static int file_written; /* STEER_FILE is ours to remove at exit */

static void remove_file(void)
{
    if (file_written)
        remove(STEER_FILE);
    file_written = 0;
}

static int nonblocking(int fd)
{
    int flags = fcntl(fd, F_GETFL, 0);
    return flags < 0 ? -1 : fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

static void json_string(FILE *fp, const char *s)
{
    fputc('"', fp);
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (c == '"' || c == '\\')
            fprintf(fp, "\\%c", c);
        else if (c < 0x20)
            fprintf(fp, "\\u%04x", c);
        else
            fputc(c, fp);
    }
    fputc('"', fp);
}

static int write_file(const steer_t *s)
{
    const char *tmp = STEER_FILE ".tmp";
    FILE *fp = fopen(tmp, "w");
    if (!fp)
        return -1;
    fprintf(fp, "{\"host\": ");
    json_string(fp, s->host);
    fprintf(fp, ", \"port\": %d, \"pid\": %ld}\n", s->port, (long)getpid());
    if (fclose(fp) != 0 || rename(tmp, STEER_FILE) != 0) {
        remove(tmp);
        return -1;
    }
    file_written = 1;
    return 0;
}

steer_t *steer_open(int port, char *err, size_t errlen)
{
    struct sockaddr_in addr;
    socklen_t alen = sizeof(addr);
    int one = 1, i;
    steer_t *s = calloc(1, sizeof(*s));

    if (!s) {
        snprintf(err, errlen, "--steer-port: out of memory");
        return NULL;
    }
    s->stopped_at = -1;
    for (i = 0; i < STEER_MAX_CLIENTS; i++)
        s->clients[i].fd = -1;
    signal(SIGPIPE, SIG_IGN); /* a client gone while we answer is not our death */
    s->listen_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (s->listen_fd < 0) {
        snprintf(err, errlen, "--steer-port: cannot make a socket: %s", strerror(errno));
        free(s);
        return NULL;
    }
    setsockopt(s->listen_fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    memset(&addr, 0, sizeof(addr));
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_ANY);
    addr.sin_port = htons((unsigned short)port);
    if (bind(s->listen_fd, (struct sockaddr *)&addr, sizeof(addr)) != 0 || listen(s->listen_fd, 4) != 0 ||
        nonblocking(s->listen_fd) != 0 || getsockname(s->listen_fd, (struct sockaddr *)&addr, &alen) != 0) {
        snprintf(err, errlen, "--steer-port: cannot listen on port %d: %s", port, strerror(errno));
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    s->port = ntohs(addr.sin_port);
    if (gethostname(s->host, sizeof(s->host) - 1) != 0 || s->host[0] == '\0')
        strcpy(s->host, "localhost");
    s->host[sizeof(s->host) - 1] = '\0';
    atexit(remove_file);
    if (write_file(s) != 0) {
        snprintf(err, errlen, "cannot write %s: %s", STEER_FILE, strerror(errno));
        close(s->listen_fd);
        free(s);
        return NULL;
    }
    return s;
}

static void reply(client_t *c, const char *text)
{
    size_t n = strlen(text);
    /* short answers to a client that reads them; one that does not read
     * loses them rather than stalling the solver */
    while (n > 0) {
        ssize_t k = send(c->fd, text, n, 0);
        if (k <= 0)
            return;
        text += k;
        n -= (size_t)k;
    }
}

static int record(steer_t *s, long step, double force)
{
    if (s->n_changes == s->cap_changes) {
        size_t cap = s->cap_changes ? 2 * s->cap_changes : 16;
        change_t *grown = realloc(s->changes, cap * sizeof(*grown));
        if (!grown)
            return -1;
        s->changes = grown;
        s->cap_changes = cap;
    }
    s->changes[s->n_changes].step = step;
    s->changes[s->n_changes].force = force;
    s->n_changes++;
    return 0;
}

/* One command line; returns 1 if it changed the run. */
static int command(steer_t *s, client_t *c, char *line, long step, double *force, int *stop, steer_flow_fn flow,
                   void *ctx)
{
    char out[160];
    size_t n = strlen(line);
    while (n > 0 && (line[n - 1] == '\r' || line[n - 1] == ' ' || line[n - 1] == '\t'))
        line[--n] = '\0';
    while (*line == ' ' || *line == '\t')
        line++;
    if (*line == '\0')
        return 0;
    s->commands++;
    if (strcmp(line, "status") == 0) {
        snprintf(out, sizeof(out), "step=%ld flow=%.9e force=%.9e\n", step, flow(ctx), *force);
        reply(c, out);
        return 0;
    }
    if (strcmp(line, "stop") == 0) {
        *stop = 1;
        s->stopped_at = step;
        snprintf(out, sizeof(out), "ok stop step=%ld\n", step);
        reply(c, out);
        printf("steer: step %ld: stop requested\n", step);
        fflush(stdout);
        return 1;
    }
    if (strncmp(line, "force", 5) == 0 && (line[5] == ' ' || line[5] == '\t')) {
        char *end;
        const char *val = line + 6;
        double f;
        while (*val == ' ' || *val == '\t')
            val++;
        errno = 0;
        f = strtod(val, &end);
        if (*val == '\0' || *end != '\0' || errno == ERANGE || !isfinite(f)) {
            reply(c, "error force: not a finite number\n");
            return 0;
        }
        if (record(s, step, f) != 0) {
            reply(c, "error force: out of memory\n");
            return 0;
        }
        *force = f;
        snprintf(out, sizeof(out), "ok force=%.9e\n", f);
        reply(c, out);
        printf("steer: step %ld: force %g\n", step, f);
        fflush(stdout);
        return 1;
    }
    reply(c, "error unknown command (status, force <value>, stop)\n");
    return 0;
}

static void drop(client_t *c)
{
    close(c->fd);
    c->fd = -1;
    c->len = 0;
}

int steer_poll(steer_t *s, long step, double *force, int *stop, steer_flow_fn flow, void *ctx)
{
    struct pollfd fds[1 + STEER_MAX_CLIENTS];
    int map[1 + STEER_MAX_CLIENTS];
    int nfds = 1, i, changed = 0;

    fds[0].fd = s->listen_fd;
    fds[0].events = POLLIN;
    for (i = 0; i < STEER_MAX_CLIENTS; i++) {
        if (s->clients[i].fd >= 0) {
            fds[nfds].fd = s->clients[i].fd;
            fds[nfds].events = POLLIN;
            map[nfds++] = i;
        }
    }
    if (poll(fds, (nfds_t)nfds, 0) <= 0)
        return 0;
    for (i = 1; i < nfds; i++) {
        client_t *c = &s->clients[map[i]];
        ssize_t k;
        char *nl;
        if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR)))
            continue;
        k = recv(c->fd, c->buf + c->len, sizeof(c->buf) - 1 - c->len, 0);
        if (k <= 0) {
            if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
                continue;
            drop(c);
            continue;
        }
        c->len += (size_t)k;
        c->buf[c->len] = '\0';
        while (c->fd >= 0 && (nl = strchr(c->buf, '\n')) != NULL) {
            size_t used = (size_t)(nl - c->buf) + 1;
            *nl = '\0';
            changed += command(s, c, c->buf, step, force, stop, flow, ctx);
            memmove(c->buf, c->buf + used, c->len - used + 1);
            c->len -= used;
        }
        if (c->fd >= 0 && c->len >= sizeof(c->buf) - 1) {
            reply(c, "error line too long\n");
            drop(c);
        }
    }
    if (fds[0].revents & POLLIN) {
        for (;;) {
            int fd = accept(s->listen_fd, NULL, NULL);
            if (fd < 0)
                break;
            for (i = 0; i < STEER_MAX_CLIENTS && s->clients[i].fd >= 0; i++)
                ;
            if (i == STEER_MAX_CLIENTS || nonblocking(fd) != 0) {
                const char *busy = "error too many clients\n";
                if (send(fd, busy, strlen(busy), 0) < 0) {
                    /* it goes anyway */
                }
                close(fd);
                continue;
            }
            s->clients[i].fd = fd;
            s->clients[i].len = 0;
        }
    }
    return changed;
}

int steer_port(const steer_t *s)
{
    return s->port;
}

const char *steer_host(const steer_t *s)
{
    return s->host;
}

void steer_write_json(FILE *fp, const steer_t *s, double initial_force)
{
    size_t i;
    fprintf(fp, "{\"host\": ");
    json_string(fp, s->host);
    fprintf(fp, ", \"port\": %d, \"commands\": %ld, \"stopped_at_step\": ", s->port, s->commands);
    if (s->stopped_at >= 0)
        fprintf(fp, "%ld", s->stopped_at);
    else
        fputs("null", fp);
    fprintf(fp, ",\n    \"force_history\": [{\"step\": 0, \"force\": %.9e}", initial_force);
    for (i = 0; i < s->n_changes; i++)
        fprintf(fp, ", {\"step\": %ld, \"force\": %.9e}", s->changes[i].step, s->changes[i].force);
    fputs("]}", fp);
}

void steer_close(steer_t *s)
{
    int i;
    if (!s)
        return;
    for (i = 0; i < STEER_MAX_CLIENTS; i++)
        if (s->clients[i].fd >= 0)
            drop(&s->clients[i]);
    close(s->listen_fd);
    remove_file();
    free(s->changes);
    free(s);
}

#endif /* _WIN32 */
