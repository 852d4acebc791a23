// The C shims Swift needs on Linux: calls Glibc's module does not export (they need
// _GNU_SOURCE), variadic calls, function-like macros, and the spawn routine that runs
// between fork and exec. Every function returns -errno on failure unless noted.
#ifndef CBULKHEAD_H
#define CBULKHEAD_H

#include <stdint.h>
#include <stddef.h>
#include <sys/types.h>
#include <sys/stat.h>
#include <sys/syscall.h> // SYS_* numbers, for the sandbox tests' raw calls

// Constants Swift cannot see through Glibc, as plain enum values.
enum {
    BH_EPOLLIN = 0x001,
    BH_EPOLLOUT = 0x004,
    BH_EPOLLERR = 0x008,
    BH_EPOLLHUP = 0x010,
    BH_EPOLLRDHUP = 0x2000,
    BH_EPOLLET = (int)(1u << 31),
    BH_EPOLL_CTL_ADD = 1,
    BH_EPOLL_CTL_DEL = 2,
    BH_EPOLL_CTL_MOD = 3,
};

enum bh_rlimit {
    BH_RLIMIT_CPU = 0,
    BH_RLIMIT_FSIZE = 1,
    BH_RLIMIT_NOFILE = 7,
    BH_RLIMIT_AS = 9,
    BH_RLIMIT_NPROC = 6,
    BH_RLIMIT_CORE = 4,
};

// Arguments the seccomp policy inspects (Linux UAPI values, x86_64 and aarch64 alike).
enum {
    BH_CLONE_THREAD = 0x00010000,
    BH_TIOCSTI = 0x5412,
    BH_TCGETS = 0x5401,
    BH_FIONREAD = 0x541B,
    BH_FIONBIO = 0x5421,
    BH_FIOCLEX = 0x5451,
    BH_AF_UNIX = 1,
    BH_PER_LINUX = 0,
    BH_CLD_EXITED = 1,
    BH_PR_SET_NAME = 15,
    BH_PR_GET_NAME = 16,
};

// epoll, with the packed epoll_event kept on the C side.
int bh_epoll_create(void);
int bh_epoll_ctl(int epfd, int op, int fd, uint32_t events, uint64_t data);
int bh_epoll_wait(int epfd, uint32_t *events, uint64_t *data, int max, int timeout_ms);

// eventfd (non-blocking, close-on-exec).
int bh_eventfd(void);
int bh_eventfd_signal(int fd);
int bh_eventfd_drain(int fd);

// signalfd: blocks the signals in the calling thread and returns a descriptor for them.
int bh_block_signals(const int *signals, int count);
int bh_signalfd(const int *signals, int count);
/// Reads one signal; returns its number, 0 when none is pending, or -errno.
int bh_signalfd_read(int fd);

// timerfd on CLOCK_MONOTONIC; deadlines in nanoseconds of that clock.
int bh_timerfd(void);
int bh_timerfd_arm(int fd, uint64_t deadline_ns);
int bh_timerfd_drain(int fd);
uint64_t bh_monotonic_ns(void);

// Child processes tracked by pidfd, so a reused pid is never signalled.
int bh_pidfd_open(pid_t pid);
int bh_pidfd_send_signal(int pidfd, int sig);
/// waitid(P_PIDFD) with the kernel's rusage. Returns 1 when the child was reaped, 0 when
/// it is still running (WNOHANG), or -errno. `code` is CLD_EXITED/CLD_KILLED/CLD_DUMPED.
int bh_pidfd_reap(int pidfd, int *code, int *status, uint64_t *cpu_us, uint64_t *maxrss_kib);

// Privileges and process attributes.
int bh_setresuid(uid_t r, uid_t e, uid_t s);
int bh_setresgid(gid_t r, gid_t e, gid_t s);
int bh_getresuid(uid_t *r, uid_t *e, uid_t *s);
int bh_getresgid(gid_t *r, gid_t *e, gid_t *s);
int bh_setgroups_none(void);
int bh_getgroups_count(void);
int bh_set_pdeathsig(int sig);
int bh_set_no_new_privs(void);
int bh_get_no_new_privs(void);
int bh_set_dumpable(int on);
int bh_set_child_subreaper(void);
int bh_setrlimit(int resource, uint64_t soft, uint64_t hard);
int bh_getrlimit(int resource, uint64_t *soft, uint64_t *hard);
int bh_close_range_from(unsigned int first);
int bh_clearenv(void);

// Sockets.
int bh_socketpair_stream(int fds[2]);
int bh_accept4(int fd);
/// A listening SOCK_STREAM Unix socket at `path` (non-blocking, close-on-exec). A stale
/// socket file left by a dead daemon is replaced; any other file there is an error.
int bh_unix_listen(const char *path, int backlog);
/// A listening TCP socket on host:port (IPv4 or IPv6 literal, "" or "*" = any),
/// non-blocking, close-on-exec, SO_REUSEADDR, and SO_REUSEPORT when `reuseport`.
int bh_tcp_listen(const char *host, int port, int reuseport, int backlog);
/// The port a socket is bound to (for port 0), or -errno.
int bh_local_port(int fd);
/// accept4 (non-blocking, close-on-exec) that also writes the peer's address as text
/// ("1.2.3.4:5678", "[::1]:5678" or "unix") into `peer`. TCP sockets get TCP_NODELAY.
int bh_accept_peer(int fd, char *peer, size_t cap);
/// A connected (blocking) SOCK_STREAM Unix socket.
int bh_unix_connect(const char *path);
int bh_peercred(int fd, pid_t *pid, uid_t *uid, gid_t *gid);

// The spawner (zygote) channel: a SOCK_SEQPACKET pair, messages with descriptors attached.
int bh_socketpair_seqpacket(int fds[2]);
/// sendmsg of `len` bytes with `nfds` descriptors as SCM_RIGHTS (MSG_NOSIGNAL).
int bh_send_with_fds(int sock, const void *data, size_t len, const int *fds, int nfds);
/// recvmsg of one message into `buf`; received descriptors (close-on-exec) go to `fds`,
/// their count to `*nfds`. Returns the byte count (0 at end of stream).
int bh_recv_with_fds(int sock, void *buf, size_t cap, int *fds, int maxfds, int *nfds);
/// clone(CLONE_PARENT | SIGCHLD): a fork whose child is a sibling — the caller's parent
/// (the supervisor) becomes the child's parent, so it reaps it and holds its pidfd. For a
/// single-threaded spawner only. Returns 0 in the child, the pid in the caller.
pid_t bh_fork_sibling(void);
int bh_dup2(int from, int to);
/// fcntl(F_DUPFD_CLOEXEC, min): a copy of `fd` numbered `min` or above.
int bh_dup_above(int fd, int min);
/// Fills `buf` from the kernel's CSPRNG (getrandom), all or -errno.
int bh_random(void *buf, size_t len);

// Walks of a directory tree a tenant controls (its volume), which it may change while
// the root daemon walks it. One walker serves the storage scan, removal and backups:
// iterative (no recursion; a 24-byte record a level on the heap, plus each level's name
// for removal), one open directory at any depth. Down with openat(O_NOFOLLOW |
// O_DIRECTORY), checked against the lstat that listed the entry; up with openat(".."),
// checked against the (st_dev, st_ino) recorded on the way down. It never follows a
// symbolic link, never enters another filesystem and never resolves a path of more than
// one component inside the tree. A directory moved or replaced under the walk ends it
// with -BH_WALK_MOVED; it never continues elsewhere. An entry that vanishes between
// being listed and being looked at is passed over.

/// What `bh_walk_next` found.
enum bh_walk_event {
    /// A directory of the root's filesystem; the walk goes into it on the next call
    /// unless `bh_walk_skip` is called first.
    BH_WALK_DIRECTORY = 1,
    BH_WALK_FILE = 2,
    /// Anything else: a symbolic link, socket, FIFO, device, or a directory on another
    /// filesystem (never entered).
    BH_WALK_OTHER = 3,
    /// A directory's entries are all done (after its last entry, before its next sibling).
    BH_WALK_LEAVE = 4,
};

/// The walk's own error, distinct from every errno value: a directory was moved or
/// replaced while the walk was in it or about to enter it.
enum { BH_WALK_MOVED = 4096 };

struct bh_walk_entry {
    enum bh_walk_event event;
    /// The directory that holds the entry, open until the next `bh_walk_next`.
    int directory_fd;
    /// The entry's name (raw bytes, NUL-terminated), valid until the next `bh_walk_next`;
    /// NULL for BH_WALK_LEAVE.
    const char *name;
    size_t name_length;
    /// 1 for the entries of the root directory.
    size_t depth;
    /// lstat of the entry when it was listed; for BH_WALK_LEAVE only st_dev and st_ino.
    struct stat st;
};

typedef struct bh_walk bh_walk;

/// Starts a walk of the directory `path` (relative to `dirfd`, or AT_FDCWD), opened
/// without following a link. `root`, if not NULL, receives its fstat. `stop`, if not
/// NULL, is read before each entry: once another thread raises it (`bh_flag_raise`) the
/// walk ends with -ECANCELED. Returns 0 and the walk in `*walk`, or -errno.
int bh_walk_open(int dirfd, const char *path, const int *stop, bh_walk **walk, struct stat *root);
/// The next entry: 1 (filled in `entry`), 0 at the end, or a negative error (-errno or
/// -BH_WALK_MOVED), after which the walk only repeats that error.
int bh_walk_next(bh_walk *walk, struct bh_walk_entry *entry);
/// After a BH_WALK_DIRECTORY entry: do not go into it (and give no BH_WALK_LEAVE for it).
void bh_walk_skip(bh_walk *walk);
void bh_walk_close(bh_walk *walk);
/// The text of a negative value a walk returned (-errno or -BH_WALK_MOVED).
const char *bh_walk_strerror(long long error);
/// Raises a flag that a walk reads as its `stop` (an atomic store).
void bh_flag_raise(int *flag);

/// Removes the directory tree at `path` (and `path` itself) depth-first with the walker,
/// at any depth: entries with unlinkat, directories with unlinkat(AT_REMOVEDIR) once
/// empty, a link as a link. A directory on another filesystem is not entered: -EBUSY.
/// Returns 0 or the first failure (-errno or -BH_WALK_MOVED).
int bh_remove_tree(const char *path);
/// Disk bytes used under `path`, the root included (st_blocks × 512 of every entry of
/// the root's filesystem, links counted as links), with the walker; or a walk's error.
/// `stop` as for bh_walk_open.
long long bh_tree_bytes(const char *path, const int *stop);
/// renameat2(RENAME_NOREPLACE): `from` becomes `to` only if nothing is at `to` (-EEXIST).
int bh_rename_noreplace(int from_dir, const char *from, int to_dir, const char *to);
/// Confines the calling thread to the directory `dirfd` as `uid`/`gid`, for a thread that
/// reads a tenant's volume on the daemon's behalf: unshare(CLONE_FS) (a root of its own,
/// so chroot affects no other thread), fchdir + chroot("."), then setfsgid and setfsuid
/// (checked), which also drops root's file capabilities for this thread. Irreversible:
/// the thread must exit once done.
int bh_confine_thread(int dirfd, uid_t uid, gid_t gid);

// Pipes (close-on-exec; optionally non-blocking).
int bh_pipe(int fds[2], int nonblocking);
int bh_set_nonblocking(int fd, int on);
int bh_set_cloexec(int fd, int on);

// seccomp's function-like action macros.
uint32_t bh_scmp_act_errno(int err);

/// Loads the architecture guard, a small hand-written filter that stacks under the
/// libseccomp policy: it kills the process for a foreign architecture, for the x32 ABI
/// (syscall numbers with bit 30 set, which a libseccomp x86_64 filter would only send
/// to its default action), and for personality() with anything but PER_LINUX or the
/// 0xffffffff query (libseccomp cannot express "kill unless one of two values").
/// Requires no_new_privs. `tsync` synchronises all threads.
int bh_seccomp_load_guard(int tsync);

/// Installs a ready BPF program (an array of `count` struct sock_filter, as libseccomp
/// exports it). Requires no_new_privs.
int bh_seccomp_load_program(const void *instructions, size_t count, int tsync);

/// memfd_create(name, MFD_CLOEXEC).
int bh_memfd(const char *name);

/// A raw system call with six arguments, for the sandbox tests that attempt forbidden
/// calls without libc wrappers in the way. Returns the result or -errno.
long bh_syscall6(long nr, long a, long b, long c, long d, long e, long f);

/// Spawns `path` with `argv`, an empty environment, a new session, an empty signal
/// mask and default signal dispositions, and exactly these descriptors: stdin_fd→0,
/// stdout_fd→1, stderr_fd→2, extra_fd→3 (all others are close-on-exec). Uses
/// posix_spawn, so no code of ours runs in the child before exec. Returns the pid or
/// -errno.
pid_t bh_spawn(const char *path, char *const argv[], int stdin_fd, int stdout_fd,
               int stderr_fd, int extra_fd);

#endif
