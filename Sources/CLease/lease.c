#define _GNU_SOURCE
#include "CLease.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

int daxpin_set_lease(int fd, int type) { return fcntl(fd, F_SETLEASE, type); }
int daxpin_get_lease(int fd) { return fcntl(fd, F_GETLEASE); }
int daxpin_set_signal(int fd, int signo) { return fcntl(fd, F_SETSIG, signo); }

int daxpin_set_owner_thread(int fd, pid_t tid) {
    struct f_owner_ex owner = { .type = F_OWNER_TID, .pid = tid };
    return fcntl(fd, F_SETOWN_EX, &owner);
}

int daxpin_get_owner(int fd, int *type, pid_t *pid) {
    struct f_owner_ex owner;
    if (fcntl(fd, F_GETOWN_EX, &owner) != 0) return -1;
    *type = owner.type;
    *pid = owner.pid;
    return 0;
}

pid_t daxpin_gettid(void) { return (pid_t)syscall(SYS_gettid); }
int daxpin_sigrtmin(void) { return SIGRTMIN; }

int daxpin_block_and_signalfd(const int *signals, int count) {
    sigset_t set;
    sigemptyset(&set);
    for (int i = 0; i < count; i++) sigaddset(&set, signals[i]);
    int rc = pthread_sigmask(SIG_BLOCK, &set, NULL);
    if (rc != 0) { errno = rc; return -1; }
    /* Non-blocking: the watcher drains it until EAGAIN and then goes back to poll(2), where
     * the forwarding pipe and the pin registry's deferred write are also waited for. */
    return signalfd(-1, &set, SFD_CLOEXEC | SFD_NONBLOCK);
}

int daxpin_read_signalfd(int sfd, int *signo, int *fd, int *code) {
    struct signalfd_siginfo info;
    ssize_t n = read(sfd, &info, sizeof info);
    if (n < 0) return (errno == EAGAIN) ? 0 : -1;
    if ((size_t)n != sizeof info) { errno = EIO; return -1; }
    *signo = (int)info.ssi_signo;
    *fd = info.ssi_fd;
    *code = info.ssi_code;
    return 1;
}

static int forwarding_pipe = -1;

static void forward_signal(int signo, siginfo_t *info, void *context) {
    (void)signo; (void)context;
    int saved = errno;
    int fd = info->si_fd;
    if (forwarding_pipe >= 0) (void)!write(forwarding_pipe, &fd, sizeof fd);
    errno = saved;
}

int daxpin_install_forwarding_handler(int signo, int pipe_fd) {
    forwarding_pipe = pipe_fd;
    struct sigaction action;
    memset(&action, 0, sizeof action);
    action.sa_sigaction = forward_signal;
    action.sa_flags = SA_SIGINFO | SA_RESTART;
    sigemptyset(&action.sa_mask);
    return sigaction(signo, &action, NULL);
}

int daxpin_statx_dax(int fd, int *is_dax) {
    struct statx stx;
    if (statx(fd, "", AT_EMPTY_PATH, STATX_BASIC_STATS, &stx) != 0) return -1;
    if (!(stx.stx_attributes_mask & DAXPIN_STATX_ATTR_DAX)) { *is_dax = -1; return 0; }
    *is_dax = (stx.stx_attributes & DAXPIN_STATX_ATTR_DAX) ? 1 : 0;
    return 0;
}

int daxpin_flush_cache(const void *addr, size_t len) {
#if defined(__x86_64__)
    const size_t line = 64;
    uintptr_t p = (uintptr_t)addr & ~(uintptr_t)(line - 1);
    uintptr_t end = (uintptr_t)addr + len;
    for (; p < end; p += line) __builtin_ia32_clflush((const void *)p);
    __builtin_ia32_sfence();
    return 0;
#else
    (void)addr; (void)len;
    errno = ENOSYS;
    return -1;
#endif
}

int daxpin_pipe(int fds[2]) { return pipe2(fds, O_CLOEXEC | O_NONBLOCK); }

int daxpin_fs_magic(int fd, unsigned long long *magic) {
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return -1;
    *magic = (unsigned long long)fs.f_type;
    return 0;
}
