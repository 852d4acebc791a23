// Thin wrappers over Linux calls Swift cannot reach directly; each returns -errno on
// failure so the Swift side has one error convention.
#include "CBulkhead.h"

#include <errno.h>
#include <fcntl.h>
#include <dirent.h>
#include <grp.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <sys/epoll.h>
#include <sys/mman.h>
#include <sys/eventfd.h>
#include <sys/fsuid.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/timerfd.h>
#include <sys/wait.h>
#include <sched.h>
#include <time.h>
#include <unistd.h>

_Static_assert(BH_EPOLLIN == EPOLLIN && BH_EPOLLOUT == EPOLLOUT && BH_EPOLLRDHUP == EPOLLRDHUP, "epoll");
_Static_assert((int)BH_RLIMIT_CPU == (int)RLIMIT_CPU && (int)BH_RLIMIT_FSIZE == (int)RLIMIT_FSIZE, "rlimit");
_Static_assert((int)BH_RLIMIT_NOFILE == (int)RLIMIT_NOFILE && (int)BH_RLIMIT_AS == (int)RLIMIT_AS, "rlimit");
_Static_assert((int)BH_RLIMIT_NPROC == (int)RLIMIT_NPROC && (int)BH_RLIMIT_CORE == (int)RLIMIT_CORE, "rlimit");
_Static_assert(BH_CLONE_THREAD == CLONE_THREAD && BH_TIOCSTI == TIOCSTI, "uapi");
_Static_assert(BH_TCGETS == TCGETS && BH_FIONREAD == FIONREAD && BH_FIONBIO == FIONBIO, "uapi");
_Static_assert(BH_FIOCLEX == FIOCLEX && BH_AF_UNIX == AF_UNIX, "uapi");
_Static_assert(BH_PR_SET_NAME == PR_SET_NAME && BH_PR_GET_NAME == PR_GET_NAME && BH_CLD_EXITED == CLD_EXITED, "uapi");

#define RET(expr) do { long r_ = (long)(expr); return r_ < 0 ? -errno : (int)r_; } while (0)

int bh_epoll_create(void) { RET(epoll_create1(EPOLL_CLOEXEC)); }

int bh_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data) {
    struct epoll_event ev = {.events = events, .data.u64 = data};
    RET(epoll_ctl(epfd, op, fd, &ev));
}

int bh_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        data[i] = evs[i].data.u64;
    }
    return n;
}

int bh_eventfd(void) { RET(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

int bh_eventfd_signal(int fd) {
    uint64_t one = 1;
    // EAGAIN means the counter is saturated: a wake-up is pending anyway.
    if (write(fd, &one, sizeof one) < 0 && errno != EAGAIN) return -errno;
    return 0;
}

int bh_eventfd_drain(int fd) {
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN) return -errno;
    return 0;
}

static int fill_set(sigset_t *set, const int *signals, int count) {
    sigemptyset(set);
    for (int i = 0; i < count; i++)
        if (sigaddset(set, signals[i]) < 0) return -errno;
    return 0;
}

int bh_block_signals(const int *signals, int count) {
    sigset_t set;
    int r = fill_set(&set, signals, count);
    if (r < 0) return r;
    int e = pthread_sigmask(SIG_BLOCK, &set, NULL);
    return e ? -e : 0;
}

int bh_signalfd(const int *signals, int count) {
    sigset_t set;
    int r = fill_set(&set, signals, count);
    if (r < 0) return r;
    RET(signalfd(-1, &set, SFD_NONBLOCK | SFD_CLOEXEC));
}

int bh_signalfd_read(int fd) {
    struct signalfd_siginfo info;
    ssize_t n = read(fd, &info, sizeof info);
    if (n < 0) return errno == EAGAIN ? 0 : -errno;
    if (n != sizeof info) return -EIO;
    return (int)info.ssi_signo;
}

int bh_timerfd(void) { RET(timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC)); }

int bh_timerfd_arm(int fd, uint64_t deadline_ns) {
    struct itimerspec its;
    memset(&its, 0, sizeof its);
    if (deadline_ns == 0) deadline_ns = 1; // an all-zero value would disarm the timer
    its.it_value.tv_sec = (time_t)(deadline_ns / 1000000000ull);
    its.it_value.tv_nsec = (long)(deadline_ns % 1000000000ull);
    RET(timerfd_settime(fd, TFD_TIMER_ABSTIME, &its, NULL));
}

int bh_timerfd_drain(int fd) {
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN) return -errno;
    return 0;
}

uint64_t bh_monotonic_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

int bh_pidfd_open(pid_t pid) { RET(syscall(SYS_pidfd_open, pid, 0)); }

int bh_pidfd_send_signal(int pidfd, int sig) { RET(syscall(SYS_pidfd_send_signal, pidfd, sig, NULL, 0)); }

int bh_pidfd_reap(int pidfd, int *code, int *status, uint64_t *cpu_us, uint64_t *maxrss_kib) {
    siginfo_t info;
    struct rusage ru;
    memset(&info, 0, sizeof info);
    memset(&ru, 0, sizeof ru);
    // The raw syscall has a fifth argument, the child's rusage, that glibc's waitid hides.
    long r = syscall(SYS_waitid, P_PIDFD, pidfd, &info, WEXITED | WNOHANG, &ru);
    if (r < 0) return -errno;
    if (info.si_pid == 0) return 0;
    *code = info.si_code;
    *status = info.si_status;
    *cpu_us = (uint64_t)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1000000ull +
              (uint64_t)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec);
    *maxrss_kib = (uint64_t)ru.ru_maxrss;
    return 1;
}

int bh_setresuid(uid_t r, uid_t e, uid_t s) { RET(setresuid(r, e, s)); }
int bh_setresgid(gid_t r, gid_t e, gid_t s) { RET(setresgid(r, e, s)); }
int bh_getresuid(uid_t *r, uid_t *e, uid_t *s) { RET(getresuid(r, e, s)); }
int bh_getresgid(gid_t *r, gid_t *e, gid_t *s) { RET(getresgid(r, e, s)); }
int bh_setgroups_none(void) { RET(setgroups(0, NULL)); }
int bh_getgroups_count(void) { RET(getgroups(0, NULL)); }
int bh_set_pdeathsig(int sig) { RET(prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0)); }
int bh_set_no_new_privs(void) { RET(prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)); }
int bh_get_no_new_privs(void) { RET(prctl(PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)); }
int bh_set_dumpable(int on) { RET(prctl(PR_SET_DUMPABLE, on, 0, 0, 0)); }
int bh_set_child_subreaper(void) { RET(prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)); }

int bh_setrlimit(int resource, uint64_t soft, uint64_t hard) {
    struct rlimit rl = {.rlim_cur = soft, .rlim_max = hard};
    RET(setrlimit(resource, &rl));
}

int bh_getrlimit(int resource, uint64_t *soft, uint64_t *hard) {
    struct rlimit rl;
    if (getrlimit(resource, &rl) < 0) return -errno;
    *soft = rl.rlim_cur;
    *hard = rl.rlim_max;
    return 0;
}

int bh_close_range_from(unsigned int first) { RET(syscall(SYS_close_range, first, ~0u, 0)); }

int bh_clearenv(void) { RET(clearenv()); }

int bh_socketpair_stream(int fds[2]) { RET(socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, fds)); }

int bh_accept4(int fd) { RET(accept4(fd, NULL, NULL, SOCK_CLOEXEC | SOCK_NONBLOCK)); }

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/un.h>

static int fill_sun(struct sockaddr_un *sun, const char *path) {
    memset(sun, 0, sizeof *sun);
    sun->sun_family = AF_UNIX;
    if (strlen(path) >= sizeof sun->sun_path) return -ENAMETOOLONG;
    strcpy(sun->sun_path, path);
    return 0;
}

int bh_unix_listen(const char *path, int backlog) {
    struct sockaddr_un sun;
    int r = fill_sun(&sun, path);
    if (r < 0) return r;
    struct stat st;
    if (lstat(path, &st) == 0) {
        if (!S_ISSOCK(st.st_mode)) return -EEXIST;
        unlink(path);
    }
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (bind(fd, (struct sockaddr *)&sun, sizeof sun) < 0 || listen(fd, backlog) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int bh_tcp_listen(const char *host, int port, int reuseport, int backlog) {
    struct addrinfo hints, *res = NULL;
    memset(&hints, 0, sizeof hints);
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    char service[16];
    snprintf(service, sizeof service, "%d", port);
    const char *node = (host == NULL || host[0] == 0 || strcmp(host, "*") == 0) ? NULL : host;
    if (node == NULL) hints.ai_family = AF_INET;
    int e = getaddrinfo(node, service, &hints, &res);
    if (e != 0) return -EINVAL;
    int fd = socket(res->ai_family, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) { e = errno; freeaddrinfo(res); return -e; }
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (reuseport) setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    if (res->ai_family == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof one);
    if (bind(fd, res->ai_addr, res->ai_addrlen) < 0 || listen(fd, backlog) < 0) {
        e = errno;
        close(fd);
        freeaddrinfo(res);
        return -e;
    }
    freeaddrinfo(res);
    return fd;
}

int bh_local_port(int fd) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    if (getsockname(fd, (struct sockaddr *)&ss, &len) < 0) return -errno;
    if (ss.ss_family == AF_INET) return ntohs(((struct sockaddr_in *)&ss)->sin_port);
    if (ss.ss_family == AF_INET6) return ntohs(((struct sockaddr_in6 *)&ss)->sin6_port);
    return 0;
}

int bh_accept_peer(int fd, char *peer, size_t cap) {
    struct sockaddr_storage ss;
    socklen_t len = sizeof ss;
    int c = accept4(fd, (struct sockaddr *)&ss, &len, SOCK_CLOEXEC | SOCK_NONBLOCK);
    if (c < 0) return -errno;
    char ip[INET6_ADDRSTRLEN] = "";
    if (ss.ss_family == AF_INET) {
        struct sockaddr_in *a = (struct sockaddr_in *)&ss;
        inet_ntop(AF_INET, &a->sin_addr, ip, sizeof ip);
        snprintf(peer, cap, "%s:%d", ip, ntohs(a->sin_port));
    } else if (ss.ss_family == AF_INET6) {
        struct sockaddr_in6 *a = (struct sockaddr_in6 *)&ss;
        inet_ntop(AF_INET6, &a->sin6_addr, ip, sizeof ip);
        snprintf(peer, cap, "[%s]:%d", ip, ntohs(a->sin6_port));
    } else {
        snprintf(peer, cap, "unix");
    }
    if (ss.ss_family == AF_INET || ss.ss_family == AF_INET6) {
        int one = 1;
        setsockopt(c, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    return c;
}

int bh_unix_connect(const char *path) {
    struct sockaddr_un sun;
    int r = fill_sun(&sun, path);
    if (r < 0) return r;
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    int c;
    do { c = connect(fd, (struct sockaddr *)&sun, sizeof sun); } while (c < 0 && errno == EINTR);
    if (c < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int bh_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid) {
    struct ucred cred;
    socklen_t len = sizeof cred;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0) return -errno;
    *pid = cred.pid;
    *uid = cred.uid;
    *gid = cred.gid;
    return 0;
}

int bh_socketpair_seqpacket(int fds[2]) { RET(socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, fds)); }

int bh_send_with_fds(int sock, const void *data, size_t len, const int *fds, int nfds) {
    if (nfds < 0 || nfds > 8) return -EINVAL;
    struct iovec iov = {.iov_base = (void *)data, .iov_len = len};
    union { char buf[CMSG_SPACE(8 * sizeof(int))]; struct cmsghdr align; } control;
    memset(&control, 0, sizeof control);
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1};
    if (nfds > 0) {
        msg.msg_control = control.buf;
        msg.msg_controllen = CMSG_SPACE((size_t)nfds * sizeof(int));
        struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN((size_t)nfds * sizeof(int));
        memcpy(CMSG_DATA(c), fds, (size_t)nfds * sizeof(int));
    }
    ssize_t n;
    do { n = sendmsg(sock, &msg, MSG_NOSIGNAL); } while (n < 0 && errno == EINTR);
    return n < 0 ? -errno : (int)n;
}

int bh_recv_with_fds(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds) {
    struct iovec iov = {.iov_base = buf, .iov_len = cap};
    union { char buf[CMSG_SPACE(8 * sizeof(int))]; struct cmsghdr align; } control;
    struct msghdr msg = {.msg_iov = &iov, .msg_iovlen = 1, .msg_control = control.buf, .msg_controllen = sizeof control.buf};
    *nfds = 0;
    ssize_t n;
    do { n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC); } while (n < 0 && errno == EINTR);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c; c = CMSG_NXTHDR(&msg, c)) {
        if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
        int count = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
        int *got = (int *)CMSG_DATA(c);
        for (int i = 0; i < count; i++) {
            if (*nfds < maxfds) fds[(*nfds)++] = got[i];
            else close(got[i]); /* more than we asked for: never leak them */
        }
    }
    if (msg.msg_flags & MSG_CTRUNC) {
        for (int i = 0; i < *nfds; i++) close(fds[i]);
        *nfds = 0;
        return -EMSGSIZE;
    }
    return (int)n;
}

pid_t bh_fork_sibling(void) { RET(syscall(SYS_clone, CLONE_PARENT | SIGCHLD, 0, NULL, NULL, 0)); }

int bh_dup2(int from, int to) { RET(dup2(from, to)); }
int bh_dup_above(int fd, int min) { RET(fcntl(fd, F_DUPFD_CLOEXEC, min)); }

int bh_random(void *buf, size_t len) {
    size_t got = 0;
    while (got < len) {
        ssize_t n = getrandom((char *)buf + got, len - got, 0);
        if (n < 0) {
            if (errno == EINTR) continue;
            return -errno;
        }
        got += (size_t)n;
    }
    return 0;
}

/* ---- Walks of a tree the tenant controls (CBulkhead.h explains the rules) ---- */

#define WALK_OPEN_FLAGS (O_RDONLY | O_DIRECTORY | O_NOFOLLOW | O_CLOEXEC | O_NONBLOCK)
/* Removal only: keep each level's name (to remove the directory on the way up), and read
 * a directory again from its start when a pass over it handed out entries, since a
 * filesystem may shift the positions of the entries left behind when some are removed. */
#define WALK_NAMES 1
#define WALK_REREAD 2

struct walk_level {
    ino_t ino;     /* the directory's inode (all levels share the root's st_dev) */
    off_t resume;  /* where to go on reading it once the walk is back from below */
    size_t name;   /* its name's offset in `names` (WALK_NAMES) */
};

struct bh_walk {
    int fd;  /* the directory at levels[depth], the only one open */
    dev_t dev;
    int flags;
    const int *stop;
    int result;  /* sticky once non-zero: the error, or 1 when the walk has ended */
    int descend; /* the last entry was a directory to go into */
    int handed;  /* this pass over the current directory handed out an entry */
    struct walk_level *levels;
    size_t depth, capacity;
    char *names;
    size_t names_length, names_capacity;
    const char *pending_name; /* the directory to go into (it points into buf) */
    struct stat pending;
    size_t at, filled;
    _Alignas(8) char buf[32768];
};

static int walk_fail(bh_walk *w, int error) {
    w->result = error;
    return error;
}

static int walk_open(int dirfd, const char *path, const int *stop, int flags, bh_walk **walk, struct stat *root) {
    bh_walk *w = calloc(1, sizeof *w);
    if (w == NULL) return -ENOMEM;
    w->levels = malloc(64 * sizeof *w->levels);
    if (w->levels == NULL) { free(w); return -ENOMEM; }
    w->capacity = 64;
    w->flags = flags;
    w->stop = stop;
    w->fd = openat(dirfd, path, WALK_OPEN_FLAGS);
    struct stat st;
    if (w->fd < 0 || fstat(w->fd, &st) < 0) {
        int e = -errno;
        bh_walk_close(w);
        return e;
    }
    w->dev = st.st_dev;
    w->levels[0] = (struct walk_level){.ino = st.st_ino, .resume = 0, .name = 0};
    if (root) *root = st;
    *walk = w;
    return 0;
}

int bh_walk_open(int dirfd, const char *path, const int *stop, bh_walk **walk, struct stat *root) {
    return walk_open(dirfd, path, stop, 0, walk, root);
}

void bh_walk_skip(bh_walk *w) { w->descend = 0; }

void bh_walk_close(bh_walk *w) {
    if (w == NULL) return;
    if (w->fd >= 0) close(w->fd);
    free(w->levels);
    free(w->names);
    free(w);
}

const char *bh_walk_strerror(long long error) {
    if (error == -BH_WALK_MOVED) return "a directory was moved or replaced while it was walked";
    return strerror((int)-error);
}

void bh_flag_raise(int *flag) { __atomic_store_n(flag, 1, __ATOMIC_RELEASE); }

/* Goes into the directory listed as `name` with `listed`: 1 when in it, 0 when it is gone. */
static int walk_descend(bh_walk *w, const char *name, const struct stat *listed) {
    int fd = openat(w->fd, name, WALK_OPEN_FLAGS);
    if (fd < 0) {
        if (errno == ENOENT) return 0;
        /* Now a link or not a directory: replaced since it was listed. */
        return errno == ELOOP || errno == ENOTDIR ? -BH_WALK_MOVED : -errno;
    }
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    if (r == 0 && (st.st_dev != listed->st_dev || st.st_ino != listed->st_ino)) r = -BH_WALK_MOVED;
    if (r == 0 && w->depth + 1 == w->capacity) {
        struct walk_level *more = realloc(w->levels, 2 * w->capacity * sizeof *more);
        if (more == NULL) r = -ENOMEM;
        else { w->levels = more; w->capacity *= 2; }
    }
    size_t length = strlen(name) + 1, at = w->names_length;
    if (r == 0 && (w->flags & WALK_NAMES) && at + length > w->names_capacity) {
        size_t capacity = w->names_capacity ? 2 * w->names_capacity : 4096;
        while (at + length > capacity) capacity *= 2;
        char *more = realloc(w->names, capacity);
        if (more == NULL) r = -ENOMEM;
        else { w->names = more; w->names_capacity = capacity; }
    }
    if (r < 0) {
        close(fd);
        return r;
    }
    if (w->flags & WALK_NAMES) {
        memcpy(w->names + at, name, length);
        w->names_length = at + length;
    }
    w->levels[++w->depth] = (struct walk_level){.ino = st.st_ino, .resume = 0, .name = at};
    close(w->fd);
    w->fd = fd;
    w->at = w->filled = 0;
    w->handed = 0;
    return 1;
}

/* Back up to the parent of the current directory, which must be the one recorded. */
static int walk_climb(bh_walk *w, struct bh_walk_entry *e) {
    struct walk_level left = w->levels[w->depth], *parent = &w->levels[w->depth - 1];
    int fd = openat(w->fd, "..", WALK_OPEN_FLAGS);
    if (fd < 0) return errno == ENOENT ? -BH_WALK_MOVED : -errno; /* ENOENT: removed while in it */
    struct stat st;
    int r = fstat(fd, &st) < 0 ? -errno : 0;
    if (r == 0 && (st.st_dev != w->dev || st.st_ino != parent->ino)) r = -BH_WALK_MOVED;
    if (r == 0 && lseek(fd, parent->resume, SEEK_SET) < 0) r = -errno;
    if (r < 0) {
        close(fd);
        return r;
    }
    close(w->fd);
    w->fd = fd;
    w->depth--;
    w->at = w->filled = 0;
    w->handed = 1; /* the directory just left was handed out in this pass */
    memset(e, 0, sizeof *e);
    e->event = BH_WALK_LEAVE;
    e->directory_fd = fd;
    e->depth = w->depth + 1;
    e->st.st_dev = w->dev;
    e->st.st_ino = left.ino;
    if (w->flags & WALK_NAMES) {
        /* The name stays in place until a later call goes down again and overwrites it. */
        e->name = w->names + left.name;
        e->name_length = strlen(e->name);
        w->names_length = left.name;
    }
    return 1;
}

int bh_walk_next(bh_walk *w, struct bh_walk_entry *e) {
    if (w->result) return w->result < 0 ? w->result : 0;
    if (w->descend) {
        w->descend = 0;
        int r = walk_descend(w, w->pending_name, &w->pending);
        if (r < 0) return walk_fail(w, r);
    }
    for (;;) {
        if (w->stop && __atomic_load_n(w->stop, __ATOMIC_ACQUIRE)) return walk_fail(w, -ECANCELED);
        if (w->at >= w->filled) {
            ssize_t n = getdents64(w->fd, w->buf, sizeof w->buf);
            if (n < 0) {
                if (errno == EINTR) continue;
                return walk_fail(w, -errno);
            }
            if (n == 0) {
                if ((w->flags & WALK_REREAD) && w->handed) {
                    if (lseek(w->fd, 0, SEEK_SET) < 0) return walk_fail(w, -errno);
                    w->handed = 0;
                    continue;
                }
                if (w->depth == 0) {
                    w->result = 1;
                    return 0;
                }
                int r = walk_climb(w, e);
                return r < 0 ? walk_fail(w, r) : r;
            }
            w->at = 0;
            w->filled = (size_t)n;
        }
        struct dirent64 *d = (struct dirent64 *)(w->buf + w->at);
        w->at += d->d_reclen;
        w->levels[w->depth].resume = d->d_off;
        const char *name = d->d_name;
        if (name[0] == '.' && (name[1] == 0 || (name[1] == '.' && name[2] == 0))) continue;
        struct stat st;
        if (fstatat(w->fd, name, &st, AT_SYMLINK_NOFOLLOW) < 0) {
            if (errno == ENOENT) continue; /* gone since it was listed */
            return walk_fail(w, -errno);
        }
        w->handed = 1;
        memset(e, 0, sizeof *e);
        e->directory_fd = w->fd;
        e->name = name;
        e->name_length = strlen(name);
        e->depth = w->depth + 1;
        e->st = st;
        if (S_ISDIR(st.st_mode) && st.st_dev == w->dev) {
            e->event = BH_WALK_DIRECTORY;
            w->descend = 1;
            w->pending_name = name;
            w->pending = st;
        } else {
            e->event = S_ISREG(st.st_mode) ? BH_WALK_FILE : BH_WALK_OTHER;
        }
        return 1;
    }
}

int bh_remove_tree(const char *path) {
    bh_walk *w;
    int r = walk_open(AT_FDCWD, path, NULL, WALK_NAMES | WALK_REREAD, &w, NULL);
    if (r < 0) return r;
    struct bh_walk_entry e;
    while ((r = bh_walk_next(w, &e)) > 0) {
        if (e.event == BH_WALK_DIRECTORY) continue;
        if (e.event == BH_WALK_OTHER && S_ISDIR(e.st.st_mode)) { r = -EBUSY; break; }
        int gone = unlinkat(e.directory_fd, e.name, e.event == BH_WALK_LEAVE ? AT_REMOVEDIR : 0) == 0 || errno == ENOENT;
        if (!gone) { r = -errno; break; }
    }
    bh_walk_close(w);
    if (r == 0 && rmdir(path) < 0 && errno != ENOENT) r = -errno;
    return r;
}

long long bh_tree_bytes(const char *path, const int *stop) {
    bh_walk *w;
    struct stat root;
    int r = bh_walk_open(AT_FDCWD, path, stop, &w, &root);
    if (r < 0) return r;
    long long total = (long long)root.st_blocks * 512;
    struct bh_walk_entry e;
    while ((r = bh_walk_next(w, &e)) > 0)
        if (e.event != BH_WALK_LEAVE && e.st.st_dev == root.st_dev) total += (long long)e.st.st_blocks * 512;
    bh_walk_close(w);
    return r < 0 ? r : total;
}

int bh_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to) {
    RET(renameat2(from_dir, from, to_dir, to, RENAME_NOREPLACE));
}

int bh_confine_thread(int dirfd, uid_t uid, gid_t gid) {
    if (unshare(CLONE_FS) < 0 || fchdir(dirfd) < 0 || chroot(".") < 0 || chdir("/") < 0) return -errno;
    setfsgid(gid);
    setfsuid(uid);
    /* Both calls return the previous value, never an error: ask again (-1 changes nothing). */
    if ((gid_t)setfsgid((gid_t)-1) != gid || (uid_t)setfsuid((uid_t)-1) != uid) return -EPERM;
    return 0;
}

int bh_pipe(int fds[2], int nonblocking) { RET(pipe2(fds, O_CLOEXEC | (nonblocking ? O_NONBLOCK : 0))); }

int bh_set_nonblocking(int fd, int on) {
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0) return -errno;
    flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
    RET(fcntl(fd, F_SETFL, flags));
}

int bh_set_cloexec(int fd, int on) {
    int flags = fcntl(fd, F_GETFD);
    if (flags < 0) return -errno;
    flags = on ? (flags | FD_CLOEXEC) : (flags & ~FD_CLOEXEC);
    RET(fcntl(fd, F_SETFD, flags));
}

uint32_t bh_scmp_act_errno(int err) { return 0x00050000u | ((uint32_t)err & 0x0000ffffu); }

int bh_seccomp_load_guard(int tsync) {
#if defined(__x86_64__)
#define BH_AUDIT_ARCH AUDIT_ARCH_X86_64
#define BH_X32_BIT 0x40000000u
#elif defined(__aarch64__)
#define BH_AUDIT_ARCH AUDIT_ARCH_AARCH64
#define BH_X32_BIT 0xffffffffu /* no second ABI to refuse */
#else
#error "unsupported architecture"
#endif
    const uint32_t kill = SECCOMP_RET_KILL_PROCESS, allow = SECCOMP_RET_ALLOW;
    struct sock_filter code[] = {
        /* 0 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        /* 1 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, BH_AUDIT_ARCH, 1, 0),
        /* 2 */ BPF_STMT(BPF_RET | BPF_K, kill),
        /* 3 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        /* 4 */ BPF_JUMP(BPF_JMP | BPF_JGE | BPF_K, BH_X32_BIT, 0, 1),
        /* 5 */ BPF_STMT(BPF_RET | BPF_K, kill),
        /* 6 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_personality, 1, 0),
        /* 7 */ BPF_STMT(BPF_RET | BPF_K, allow),
        // personality() takes an unsigned int: only the low word of args[0] counts.
        /* 8 */ BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, args[0])),
        /* 9 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0, 1, 0),
        /* 10 */ BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, 0xffffffffu, 0, 1),
        /* 11 */ BPF_STMT(BPF_RET | BPF_K, allow),
        /* 12 */ BPF_STMT(BPF_RET | BPF_K, kill),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    unsigned int flags = tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0;
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (r < 0) return -errno;
    return r > 0 ? -ESRCH : 0; /* with TSYNC, a positive result names a thread that could not sync */
}

int bh_seccomp_load_program(const void *instructions, size_t count, int tsync) {
    if (count == 0 || count > BPF_MAXINSNS) return -EINVAL;
    struct sock_fprog prog = {.len = (unsigned short)count, .filter = (struct sock_filter *)instructions};
    unsigned int flags = tsync ? SECCOMP_FILTER_FLAG_TSYNC : 0;
    long r = syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, flags, &prog);
    if (r < 0) return -errno;
    return r > 0 ? -ESRCH : 0;
}

int bh_memfd(const char *name) { RET(memfd_create(name, MFD_CLOEXEC)); }

long bh_syscall6(long nr, long a, long b, long c, long d, long e, long f) {
    long r = syscall(nr, a, b, c, d, e, f);
    return r < 0 ? -errno : r;
}

// Moves fd above the range the child's dup2 targets use, so that no dup2 maps a
// descriptor onto itself (which would keep its close-on-exec flag set).
static int lift(int fd, int *owned) {
    if (fd > 3) return fd;
    int copy = fcntl(fd, F_DUPFD_CLOEXEC, 4);
    if (copy >= 0) *owned = copy;
    return copy;
}

pid_t bh_spawn(const char *path, char *const argv[], int stdin_fd, int stdout_fd,
               int stderr_fd, int extra_fd) {
    int owned[4] = {-1, -1, -1, -1};
    int src[4] = {stdin_fd, stdout_fd, stderr_fd, extra_fd};
    int result = 0;
    for (int i = 0; i < 4; i++) {
        src[i] = lift(src[i], &owned[i]);
        if (src[i] < 0) { result = -errno; goto out; }
    }

    posix_spawn_file_actions_t actions;
    posix_spawnattr_t attr;
    posix_spawn_file_actions_init(&actions);
    posix_spawnattr_init(&attr);
    for (int i = 0; i < 4; i++) posix_spawn_file_actions_adddup2(&actions, src[i], i);

    sigset_t empty, all;
    sigemptyset(&empty);
    sigfillset(&all);
    posix_spawnattr_setsigmask(&attr, &empty);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);

    char *const envp[] = {NULL};
    pid_t pid;
    int e = posix_spawn(&pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    result = e ? -e : pid;
out:
    for (int i = 0; i < 4; i++)
        if (owned[i] >= 0) close(owned[i]);
    return result;
}
