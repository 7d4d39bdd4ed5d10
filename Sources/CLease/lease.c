#define _GNU_SOURCE
#include "CLease.h"

#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/vfs.h>
#include <sys/syscall.h>
#include <unistd.h>

int daxpin_set_lease(int fd, int type) { return fcntl(fd, F_SETLEASE, type); }
int daxpin_get_lease(int fd) { return fcntl(fd, F_GETLEASE); }
int daxpin_memfd_create(const char *name) { return memfd_create(name, MFD_CLOEXEC); }
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

/* The signals the watcher waits for, set once by daxpin_block_watched_signals. */
static sigset_t watched;
static int watched_count = 0;

int daxpin_block_watched_signals(const int *signals, int count) {
    sigemptyset(&watched);
    for (int i = 0; i < count; i++) sigaddset(&watched, signals[i]);
    int rc = pthread_sigmask(SIG_BLOCK, &watched, NULL);
    if (rc != 0) { errno = rc; return -1; }
    watched_count = count;
    return 0;
}

int daxpin_wait_watched_signal(int *fd, int *from_kernel) {
    if (watched_count == 0) { errno = EINVAL; return -1; }
    siginfo_t info;
    int signo = sigwaitinfo(&watched, &info);
    if (signo < 0) return errno == EINTR ? 0 : -1;
    /* A lease break carries the descriptor in si_fd; one queued by userspace (forward_signal
     * below, or daxpin_queue_signal) in its value. Userspace may send a positive code only
     * within its own process (rt_tgsigqueueinfo refuses it from another). */
    *from_kernel = info.si_code > 0;
    *fd = *from_kernel ? info.si_fd : info.si_value.sival_int;
    return signo;
}

int daxpin_queue_signal(pid_t tid, int signo, int value) {
    siginfo_t info;
    memset(&info, 0, sizeof info);
    info.si_signo = signo;
    info.si_code = SI_QUEUE;
    info.si_pid = getpid();
    info.si_uid = getuid();
    info.si_value.sival_int = value;
    return (int)syscall(SYS_rt_tgsigqueueinfo, getpid(), tid, signo, &info);
}

int daxpin_signal_pending(int signo) {
    sigset_t pending;
    if (sigpending(&pending) != 0) return -1;
    return sigismember(&pending, signo);
}

static volatile pid_t forward_to = 0;

/* Runs on whichever thread got a break signal meant for the watcher. Re-queues it to the
 * watcher with the descriptor as its value (userspace may not send a kernel si_code to another
 * thread); if the realtime queue is full, SIGIO tells the watcher to check every lease. */
static void forward_signal(int signo, siginfo_t *info, void *context) {
    (void)context;
    int saved = errno;
    pid_t target = forward_to;
    if (target > 0 && daxpin_queue_signal(target, signo, info->si_fd) != 0)
        (void)syscall(SYS_tgkill, getpid(), target, SIGIO);
    errno = saved;
}

int daxpin_install_forwarding_handler(int signo, pid_t watcher_tid) {
    forward_to = watcher_tid;
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

int daxpin_fs_magic(int fd, unsigned long long *magic) {
    struct statfs fs;
    if (fstatfs(fd, &fs) != 0) return -1;
    *magic = (unsigned long long)fs.f_type;
    return 0;
}

int daxpin_punch_hole(int fd, long long offset, long long length) {
    return fallocate(fd, FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE, offset, length);
}

/* Fork guard: descriptors a forked child must not keep (lease descriptors, verbs contexts),
 * closed in the child by a pthread_atfork handler. A lease lives on the open file description
 * and a verbs context (with its MRs) on its uverbs file: a child that kept a copy would keep
 * both alive after the parent dies. One counter per descriptor number (a number closed and
 * reused by another thread meanwhile stays counted); the handler only reads atomics and calls
 * close(2), both async-signal-safe. */
#include <pthread.h>
#include <stdatomic.h>

#define DAXPIN_FORK_GUARD_LIMIT (1 << 20)
static _Atomic unsigned char daxpin_guarded[DAXPIN_FORK_GUARD_LIMIT];
static _Atomic int daxpin_guarded_highest = -1;
static pthread_once_t daxpin_fork_guard_once = PTHREAD_ONCE_INIT;

static void daxpin_fork_guard_child(void) {
    int highest = atomic_load(&daxpin_guarded_highest);
    for (int fd = 0; fd <= highest; fd++) {
        if (atomic_load(&daxpin_guarded[fd]) != 0) {
            atomic_store(&daxpin_guarded[fd], 0);
            close(fd);
        }
    }
}

static void daxpin_fork_guard_install(void) { pthread_atfork(NULL, NULL, daxpin_fork_guard_child); }

int daxpin_fork_guard_add(int fd) {
    if (fd < 0 || fd >= DAXPIN_FORK_GUARD_LIMIT) return -1;
    pthread_once(&daxpin_fork_guard_once, daxpin_fork_guard_install);
    /* Saturating: a number added 255 times stays guarded for good (librdmacm's contexts are). */
    unsigned char count = atomic_load(&daxpin_guarded[fd]);
    while (count < 255 && !atomic_compare_exchange_weak(&daxpin_guarded[fd], &count, count + 1)) {}
    int highest = atomic_load(&daxpin_guarded_highest);
    while (fd > highest && !atomic_compare_exchange_weak(&daxpin_guarded_highest, &highest, fd)) {}
    return 0;
}

void daxpin_fork_guard_remove(int fd) {
    if (fd < 0 || fd >= DAXPIN_FORK_GUARD_LIMIT) return;
    unsigned char count = atomic_load(&daxpin_guarded[fd]);
    while (count > 0 && count < 255 && !atomic_compare_exchange_weak(&daxpin_guarded[fd], &count, count - 1)) {}
}
