#define _GNU_SOURCE
#include <malloc.h>
#include "CShims.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <net/if.h>
#include <sched.h>
#include <signal.h>
#include <spawn.h>
#include <string.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <termios.h>
#include <sys/mman.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/mount.h>
#include <sys/statvfs.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#ifndef CLOSE_RANGE_CLOEXEC
#define CLOSE_RANGE_CLOEXEC (1U << 2)
#endif

_Static_assert(LABNODE_CLONE_NEWNS == CLONE_NEWNS, "CLONE_NEWNS");
_Static_assert(LABNODE_CLONE_NEWCGROUP == CLONE_NEWCGROUP, "CLONE_NEWCGROUP");
_Static_assert(LABNODE_CLONE_NEWUTS == CLONE_NEWUTS, "CLONE_NEWUTS");
_Static_assert(LABNODE_CLONE_NEWIPC == CLONE_NEWIPC, "CLONE_NEWIPC");
_Static_assert(LABNODE_CLONE_NEWUSER == CLONE_NEWUSER, "CLONE_NEWUSER");
_Static_assert(LABNODE_CLONE_NEWPID == CLONE_NEWPID, "CLONE_NEWPID");
_Static_assert(LABNODE_CLONE_NEWNET == CLONE_NEWNET, "CLONE_NEWNET");

int labnode_unshare(int flags) { return unshare(flags); }

int labnode_setns(int fd, int nstype) { return setns(fd, nstype); }

int labnode_pivot_root(const char *new_root, const char *put_old) {
    return (int)syscall(SYS_pivot_root, new_root, put_old);
}

int labnode_set_no_new_privs(void) { return prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); }

int labnode_set_pdeathsig(int signal) { return prctl(PR_SET_PDEATHSIG, signal, 0, 0, 0); }

int labnode_set_child_subreaper(void) { return prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); }

int labnode_set_keepcaps(int keep) { return prctl(PR_SET_KEEPCAPS, keep ? 1 : 0, 0, 0, 0); }

int labnode_cloexec_from(unsigned int first) {
    return (int)syscall(SYS_close_range, first, ~0U, CLOSE_RANGE_CLOEXEC);
}

dev_t labnode_makedev(unsigned int major, unsigned int minor) { return makedev(major, minor); }

int labnode_memfd(const char *name) { return memfd_create(name, MFD_CLOEXEC); }

int labnode_seccomp_install(const void *instructions, unsigned short count) {
    struct sock_fprog program = {.len = count, .filter = (struct sock_filter *)instructions};
    return (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &program);
}

int labnode_pipe_cloexec(int fds[2]) { return pipe2(fds, O_CLOEXEC); }

unsigned long labnode_mount_flags_from_statvfs(unsigned long f_flag) {
    static const struct { unsigned long st, ms; } pairs[] = {
        {ST_NOSUID, MS_NOSUID}, {ST_NODEV, MS_NODEV}, {ST_NOEXEC, MS_NOEXEC},
        {ST_NOATIME, MS_NOATIME}, {ST_NODIRATIME, MS_NODIRATIME}, {ST_RELATIME, MS_RELATIME},
    };
    unsigned long flags = 0;
    for (size_t i = 0; i < sizeof pairs / sizeof pairs[0]; i++) {
        if (f_flag & pairs[i].st) flags |= pairs[i].ms;
    }
    return flags;
}

const char *labnode_errno_name(int err) { return strerrorname_np(err); }

pid_t labnode_spawn(const char *path, char *const argv[], char *const envp[],
                    const int *fds, int nfds) {
    posix_spawnattr_t attr;
    posix_spawn_file_actions_t actions;
    sigset_t all, none;
    int err = posix_spawnattr_init(&attr);
    if (err != 0) { errno = err; return -1; }
    err = posix_spawn_file_actions_init(&actions);
    if (err != 0) { posix_spawnattr_destroy(&attr); errno = err; return -1; }

    sigfillset(&all);
    sigemptyset(&none);
    err = posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSID | POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
    if (err == 0) err = posix_spawnattr_setsigmask(&attr, &none);
    if (err == 0) err = posix_spawnattr_setsigdefault(&attr, &all);
    // The caller guarantees every source descriptor is >= nfds (it duplicates
    // them high first), so no dup2 below can overwrite a later source.
    for (int i = 0; err == 0 && i < nfds; i++) {
        err = posix_spawn_file_actions_adddup2(&actions, fds[i], i);
    }
    if (err == 0) err = posix_spawn_file_actions_addclosefrom_np(&actions, nfds);

    pid_t pid = -1;
    if (err == 0) err = posix_spawn(&pid, path, &actions, &attr, argv, envp);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    if (err != 0) { errno = err; return -1; }
    return pid;
}

int labnode_spawn_actions_closefrom(void *actions, int from) {
    return posix_spawn_file_actions_addclosefrom_np((posix_spawn_file_actions_t *)actions, from);
}

static volatile sig_atomic_t forward_target = 0;

static void forward_handler(int sig) {
    int saved = errno;
    if (forward_target > 0) kill((pid_t)forward_target, sig);
    errno = saved;
}

int labnode_forward_signals(pid_t child) {
    static const int signals[] = {SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1, SIGUSR2, SIGWINCH};
    forward_target = child;
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = forward_handler;
    sigemptyset(&sa.sa_mask);
    // SA_RESTART so the shim's waitpid() keeps waiting after forwarding.
    sa.sa_flags = SA_RESTART;
    for (size_t i = 0; i < sizeof signals / sizeof signals[0]; i++) {
        if (sigaction(signals[i], &sa, NULL) != 0) return -1;
    }
    return 0;
}

int labnode_loopback_up(void) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return -1;
    struct ifreq req;
    memset(&req, 0, sizeof req);
    strncpy(req.ifr_name, "lo", IFNAMSIZ - 1);
    int rc = ioctl(fd, SIOCGIFFLAGS, &req);
    if (rc == 0) {
        req.ifr_flags |= IFF_UP;
        rc = ioctl(fd, SIOCSIFFLAGS, &req);
    }
    int saved = errno;
    close(fd);
    errno = saved;
    return rc;
}

int labnode_open_pty(int *master, int *slave) {
    int m = posix_openpt(O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (m < 0) return -1;
    if (grantpt(m) != 0 || unlockpt(m) != 0) { int e = errno; close(m); errno = e; return -1; }
    char name[128];
    if (ptsname_r(m, name, sizeof name) != 0) { int e = errno; close(m); errno = e; return -1; }
    int s = open(name, O_RDWR | O_NOCTTY | O_CLOEXEC);
    if (s < 0) { int e = errno; close(m); errno = e; return -1; }
    *master = m;
    *slave = s;
    return 0;
}

int labnode_set_controlling_tty(int fd) { return ioctl(fd, TIOCSCTTY, 0); }

int labnode_set_window_size(int fd, unsigned short rows, unsigned short columns) {
    struct winsize size = { .ws_row = rows, .ws_col = columns, .ws_xpixel = 0, .ws_ypixel = 0 };
    return ioctl(fd, TIOCSWINSZ, &size);
}

int labnode_malloc_trim(void) { return malloc_trim(0); }

// `labnode dns` (the kube-dns pod) gets one malloc arena. glibc adds an arena for each
// thread that meets a locked one (up to 8 per core), and each keeps its own free memory:
// about 2 MB of the add-on's 10 with 1,000 Services, while its queries run on one event
// loop. It must be set before the first thread starts, which Swift's async main does
// before any Swift code of ours runs; glibc passes argc/argv to constructors.
__attribute__((constructor)) static void labnode_dns_one_arena(int argc, char **argv, char **envp) {
    (void)envp;
    if (argc > 1 && argv[1] != NULL && strcmp(argv[1], "dns") == 0) mallopt(M_ARENA_MAX, 1);
}
