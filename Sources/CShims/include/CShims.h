// The little C that Swift cannot call safely or at all.
//
// Swift's Glibc module is imported without _GNU_SOURCE, so setns/unshare, the
// CLONE_NEW* flags, close_range and posix_spawn's setsid flag are invisible to
// it; syscall(), prctl() and ioctl() are variadic and cannot be called from
// Swift. Every function here is a thin wrapper that returns -1 and leaves errno
// set on failure, exactly like the call it wraps.
#ifndef LABNODE_CSHIMS_H
#define LABNODE_CSHIMS_H

#include <sys/types.h>

// Namespace flags, same values as <linux/sched.h>. CShims.c checks them
// against the real macros at compile time.
#define LABNODE_CLONE_NEWNS     0x00020000
#define LABNODE_CLONE_NEWCGROUP 0x02000000
#define LABNODE_CLONE_NEWUTS    0x04000000
#define LABNODE_CLONE_NEWIPC    0x08000000
#define LABNODE_CLONE_NEWUSER   0x10000000
#define LABNODE_CLONE_NEWPID    0x20000000
#define LABNODE_CLONE_NEWNET    0x40000000

int labnode_unshare(int flags);
int labnode_setns(int fd, int nstype);

// pivot_root(2) has no glibc wrapper; this goes through syscall().
int labnode_pivot_root(const char *new_root, const char *put_old);

// prctl(2) wrappers.
int labnode_set_no_new_privs(void);
int labnode_set_pdeathsig(int signal);
int labnode_set_child_subreaper(void);
int labnode_set_keepcaps(int keep);

// Terminals for `kubectl exec -t`: a new pseudo-terminal pair (master and slave, both
// close-on-exec; 0 or -1 with errno), making `fd` the caller's controlling terminal, and
// setting a terminal's size.
int labnode_open_pty(int *master, int *slave);
int labnode_set_controlling_tty(int fd);
int labnode_set_window_size(int fd, unsigned short rows, unsigned short columns);

// Marks every descriptor >= first close-on-exec (close_range with
// CLOSE_RANGE_CLOEXEC), so nothing the init opened leaks into the container.
int labnode_cloexec_from(unsigned int first);

dev_t labnode_makedev(unsigned int major, unsigned int minor);

// pipe2(O_CLOEXEC).
int labnode_pipe_cloexec(int fds[2]);

// The MS_* flags (nosuid, nodev, noexec, atime ones) matching a statvfs
// f_flag, so a read-only remount can repeat the flags a mount already has.
unsigned long labnode_mount_flags_from_statvfs(unsigned long f_flag);

// "ENOENT" for ENOENT; NULL when glibc has no name for the number.
const char *labnode_errno_name(int err);

// Starts `path` with posix_spawn in a new session, with every signal at its
// default disposition and none blocked. Descriptor `fds[i]` becomes descriptor
// `i` in the child and every descriptor >= `nfds` is closed, so the child gets
// exactly what the caller lists. Returns the pid, or -1 with errno set.
pid_t labnode_spawn(const char *path, char *const argv[], char *const envp[],
                    const int *fds, int nfds);

// posix_spawn_file_actions_addclosefrom_np(actions, from): glibc declares it only
// under _GNU_SOURCE, which Swift's Glibc module does not see.
int labnode_spawn_actions_closefrom(void *actions, int from);

// Makes the calling process forward SIGTERM, SIGINT, SIGHUP, SIGQUIT, SIGUSR1,
// SIGUSR2 and SIGWINCH to `child`. Used by the container shim so that signals
// sent to the process the daemon knows reach the container's PID 1.
int labnode_forward_signals(pid_t child);

// memfd_create(name, MFD_CLOEXEC).
int labnode_memfd(const char *name);

// Installs a classic BPF seccomp program of `count` instructions (struct
// sock_filter, 8 bytes each) on the calling thread. Needs no_new_privs or
// CAP_SYS_ADMIN, like any filter.
int labnode_seccomp_install(const void *instructions, unsigned short count);

// Sets IFF_UP on "lo" in the calling thread's network namespace.
int labnode_loopback_up(void);

// glibc's malloc_trim(0) (<malloc.h> is not part of Swift's Glibc module): returns
// the free heap of every arena to the kernel. Returns 1 when memory was released.
int labnode_malloc_trim(void);

#endif
