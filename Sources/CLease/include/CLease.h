// Thin wrappers for the lease and mapping plumbing Swift cannot call directly:
// variadic fcntl commands with struct arguments, glibc's SIGRTMIN (a function-like
// macro), signal masks and handlers, statx attribute bits and MAP_SYNC constants.
// Every function returns -1 and leaves errno set on failure, like the call it wraps.
#ifndef DAXPIN_CLEASE_H
#define DAXPIN_CLEASE_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

/// Lease types accepted by `F_SETLEASE` (values from <fcntl.h>).
enum {
    DAXPIN_F_RDLCK = 0,
    DAXPIN_F_WRLCK = 1,
    DAXPIN_F_UNLCK = 2,
    /// The value the 2019 RFC "RDMA/FS DAX truncate proposal" gave `F_LAYOUT`.
    /// Mainline kernels reject it with EINVAL; a kernel that accepts it offers layout leases.
    DAXPIN_F_LAYOUT = 16,
};

/// mmap flags for synchronous DAX mappings (<linux/mman.h>).
enum {
    DAXPIN_MAP_SHARED_VALIDATE = 0x03,
    DAXPIN_MAP_SYNC = 0x80000,
};

/// `O_TMPFILE` (<fcntl.h> defines it only with _GNU_SOURCE): an unnamed file in a directory,
/// for scratch targets on the file system being pinned (the On-Demand Paging check's).
enum {
    DAXPIN_O_TMPFILE = 020200000,
};

/// `statx` attribute bit telling that a file is accessed through DAX.
#define DAXPIN_STATX_ATTR_DAX 0x00200000ULL

int daxpin_set_lease(int fd, int type);
int daxpin_get_lease(int fd);
int daxpin_set_signal(int fd, int signo);
/// F_SETOWN_EX with F_OWNER_TID: direct the file's signals to one thread.
int daxpin_set_owner_thread(int fd, pid_t tid);
/// Reads back the owner set with F_GETOWN_EX; `*type` gets F_OWNER_TID (0), F_OWNER_PID (1) or F_OWNER_PGRP (2).
int daxpin_get_owner(int fd, int *type, pid_t *pid);
pid_t daxpin_gettid(void);
int daxpin_sigrtmin(void);
/// `memfd_create(name, MFD_CLOEXEC)`: glibc declares it only with _GNU_SOURCE. A tmpfs file
/// with no path, for scratch shared mappings (the On-Demand Paging check's target for memory
/// that is not a file on fs-dax or in the page cache).
int daxpin_memfd_create(const char *name);

/// ThreadSanitizer's annotations (its runtime defines them); only sanitizer builds call them
/// (AnnotatedMutex, with -DDAXPIN_TSAN).
void __tsan_acquire(void *addr);
void __tsan_release(void *addr);

/// Blocks `signals` in the calling thread and remembers them as the set that
/// `daxpin_wait_watched_signal` waits for (the lease watcher calls it once).
int daxpin_block_watched_signals(const int *signals, int count);
/// Waits for one of the watched signals: returns its number and fills `*fd` (si_fd of a
/// signal the kernel sent, else the value a queued signal carries) and `*from_kernel` (1 if
/// the kernel sent it, 0 if userspace queued it); 0 on interruption, -1 on error.
int daxpin_wait_watched_signal(int *fd, int *from_kernel);

/// Queues `signo` to thread `tid` of this process with `rt_tgsigqueueinfo` (SI_QUEUE, `value`
/// as its value). Realtime signals of one number are delivered in the order they were queued.
int daxpin_queue_signal(pid_t tid, int signo, int value);

/// 1 if `signo` is pending for the calling thread or the process, 0 if not, -1 on error.
int daxpin_signal_pending(int signo);

/// Installs a SA_SIGINFO handler for `signo` that re-queues the signal to `watcher_tid` with
/// `rt_tgsigqueueinfo` (SI_QUEUE, the descriptor as its value): a backstop for a lease-break
/// signal that reaches another thread. If the queue is full it sends SIGIO instead.
int daxpin_install_forwarding_handler(int signo, pid_t watcher_tid);

/// statx(fd, AT_EMPTY_PATH): sets `*is_dax` to 1/0, or -1 when the kernel does not report the bit.
int daxpin_statx_dax(int fd, int *is_dax);

/// Writes back the CPU cache lines covering [addr, addr+len) and fences: makes stores to
/// a MAP_SYNC DAX mapping durable. Returns -1 (ENOSYS) on architectures without a wrapper.
int daxpin_flush_cache(const void *addr, size_t len);

/// fstatfs: the file system's magic number (`f_type`).
int daxpin_fs_magic(int fd, unsigned long long *magic);

/// fallocate(FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE), hidden by glibc without _GNU_SOURCE:
/// the hole punch that breaks a lease (used by the soak), and that drops the On-Demand Paging
/// check's scratch pages so that the device must fault them in again.
int daxpin_punch_hole(int fd, long long offset, long long length);

/// Fork guard: a descriptor added here is closed in every child forked (without exec) from now
/// on, by a pthread_atfork handler. For lease descriptors and verbs contexts, which a child would
/// otherwise keep alive. Counted per number: remove once per add, after closing. -1 for a number
/// beyond the guard's range (1 << 20).
int daxpin_fork_guard_add(int fd);
void daxpin_fork_guard_remove(int fd);

#endif
