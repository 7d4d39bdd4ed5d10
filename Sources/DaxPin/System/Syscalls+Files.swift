import CLease
import Glibc

// The file, descriptor, metadata and signal calls of ``Syscalls``: opening and classifying what
// is pinned, the pin registry's files, `persist`, the ODP check's buffers, the completion and
// connection channels' waits, and the lease watcher's signals.
extension Syscalls {
    /// `open(2)`.
    static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        if let code = Syscalls.injectedFault(.open) { errno = code; return -1 }
        return Glibc.open(path, flags, mode)
    }

    /// `openat(2)`.
    static func openat(_ directory: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0) -> Int32 {
        if let code = Syscalls.injectedFault(.open) { errno = code; return -1 }
        return Glibc.openat(directory, name, flags, mode)
    }

    /// `stat(2)`.
    static func stat(_ path: String, _ info: inout Glibc.stat) -> Int32 {
        if let code = Syscalls.injectedFault(.stat) { errno = code; return -1 }
        return libcStat(path, &info)
    }

    /// `fstat(2)`.
    static func fstat(_ fd: Int32, _ info: inout Glibc.stat) -> Int32 {
        if let code = Syscalls.injectedFault(.stat) { errno = code; return -1 }
        return Glibc.fstat(fd, &info)
    }

    /// `fstatfs(2)`, the file system's magic number only.
    static func fileSystemMagic(_ fd: Int32, _ magic: inout UInt64) -> Int32 {
        if let code = Syscalls.injectedFault(.statfs) { errno = code; return -1 }
        var value: UInt64 = 0
        let result = daxpin_fs_magic(fd, &value)
        magic = value
        return result
    }

    /// `statx(2)`'s `STATX_ATTR_DAX`: `isDAX` is 1, 0, or -1 when the kernel does not say.
    static func statxDAX(_ fd: Int32, _ isDAX: inout Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.statx) { errno = code; return -1 }
        return daxpin_statx_dax(fd, &isDAX)
    }

    /// `read(2)`.
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
        if let code = Syscalls.injectedFault(.read) { errno = code; return -1 }
        return Glibc.read(fd, buffer, count)
    }

    /// `write(2)`.
    static func write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) -> Int {
        if let code = Syscalls.injectedFault(.write) { errno = code; return -1 }
        return Glibc.write(fd, buffer, count)
    }

    /// `pread(2)`.
    static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ offset: Int) -> Int {
        if let code = Syscalls.injectedFault(.read) { errno = code; return -1 }
        return Glibc.pread(fd, buffer, count, off_t(offset))
    }

    /// `pwrite(2)`.
    static func pwrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ offset: Int) -> Int {
        if let code = Syscalls.injectedFault(.write) { errno = code; return -1 }
        return Glibc.pwrite(fd, buffer, count, off_t(offset))
    }

    /// `fdatasync(2)`.
    static func fdatasync(_ fd: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.sync) { errno = code; return -1 }
        return Glibc.fdatasync(fd)
    }

    /// `readlink(2)`: the link's target, or nil with errno set.
    package static func readLink(_ path: String) -> String? {
        if let code = Syscalls.injectedFault(.readLink) { errno = code; return nil }
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = Glibc.readlink(path, &buffer, buffer.count - 1)
        guard count >= 0 else { return nil }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `unlinkat(2)`.
    @discardableResult
    static func unlinkat(_ directory: Int32, _ name: String, _ flags: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.unlink) { errno = code; return -1 }
        return Glibc.unlinkat(directory, name, flags)
    }

    /// `renameat(2)`.
    static func renameat(_ fromDirectory: Int32, _ from: String, _ toDirectory: Int32, _ to: String) -> Int32 {
        if let code = Syscalls.injectedFault(.rename) { errno = code; return -1 }
        return Glibc.renameat(fromDirectory, from, toDirectory, to)
    }

    /// `mkdir(2)`.
    static func mkdir(_ path: String, _ mode: mode_t) -> Int32 {
        if let code = Syscalls.injectedFault(.mkdir) { errno = code; return -1 }
        return Glibc.mkdir(path, mode)
    }

    /// `memfd_create(2)` with `MFD_CLOEXEC`.
    static func memfdCreate(_ name: String) -> Int32 {
        if let code = Syscalls.injectedFault(.open) { errno = code; return -1 }
        return daxpin_memfd_create(name)
    }

    /// `open(2)` of an unnamed file in `directory` (`O_RDWR | O_TMPFILE | O_EXCL | O_CLOEXEC`):
    /// gone with its last descriptor, never linked.
    static func openTemporaryFile(in directory: String, _ mode: mode_t) -> Int32 {
        if let code = Syscalls.injectedFault(.open) { errno = code; return -1 }
        return Glibc.open(directory, O_RDWR | Int32(DAXPIN_O_TMPFILE) | O_EXCL | O_CLOEXEC, mode)
    }

    /// `fallocate(2)` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`.
    static func punchHole(_ fd: Int32, _ offset: off_t, _ length: off_t) -> Int32 {
        if let code = Syscalls.injectedFault(.fallocate) { errno = code; return -1 }
        return daxpin_punch_hole(fd, Int64(offset), Int64(length))
    }

    /// `ftruncate(2)`.
    static func ftruncate(_ fd: Int32, _ length: off_t) -> Int32 {
        if let code = Syscalls.injectedFault(.truncate) { errno = code; return -1 }
        return Glibc.ftruncate(fd, length)
    }

    /// `fcntl(F_GETFL)` then `fcntl(F_SETFL)` with `O_NONBLOCK` added.
    @discardableResult
    static func setNonBlocking(_ fd: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.setFlags) { errno = code; return -1 }
        let flags = Glibc.fcntl(fd, F_GETFL)
        guard flags >= 0 else { return -1 }
        return Glibc.fcntl(fd, F_SETFL, flags | O_NONBLOCK)
    }

    /// `poll(2)`.
    static func poll(_ descriptors: inout [pollfd], _ milliseconds: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.poll) { errno = code; return -1 }
        return Glibc.poll(&descriptors, nfds_t(descriptors.count), milliseconds)
    }

    /// `poll(2)` on one descriptor.
    static func poll(_ descriptor: inout pollfd, _ milliseconds: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.poll) { errno = code; return -1 }
        return Glibc.poll(&descriptor, 1, milliseconds)
    }

    /// `pthread_create(3)` of a detached thread running `start(argument)`: 0, or the error
    /// number (pthread functions return it rather than set errno; errno is set to it too).
    static func startDetachedThread(_ start: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?,
                                    _ argument: UnsafeMutableRawPointer) -> Int32 {
        if let code = Syscalls.injectedFault(.createThread) { errno = code; return code }
        var thread = pthread_t()
        let rc = pthread_create(&thread, nil, start, argument)
        guard rc == 0 else { errno = rc; return rc }
        _ = pthread_detach(thread)
        return 0
    }

    /// `opendir(3)`: a directory stream, or nil with errno set.
    static func openDirectory(_ path: String) -> OpaquePointer? {
        if let code = Syscalls.injectedFault(.openDirectory) { errno = code; return nil }
        return opendir(path)
    }

    /// `readdir(3)`: the next entry, nil at the end (errno set on an error).
    static func readDirectory(_ stream: OpaquePointer) -> UnsafeMutablePointer<dirent>? {
        readdir(stream)
    }

    /// `closedir(3)` (not a fault point: the stream is freed whatever it answers).
    static func closeDirectory(_ stream: OpaquePointer) {
        _ = closedir(stream)
    }

    /// `madvise(2)`.
    static func madvise(_ address: UnsafeMutableRawPointer, _ length: Int, _ advice: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.madvise) { errno = code; return -1 }
        return Glibc.madvise(address, length, advice)
    }

    /// `msync(2)`.
    static func msync(_ address: UnsafeMutableRawPointer, _ length: Int, _ flags: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.msync) { errno = code; return -1 }
        return Glibc.msync(address, length, flags)
    }

    /// `rt_tgsigqueueinfo(2)` to one thread of this process, with `value` as the payload.
    @discardableResult
    static func queueSignal(_ thread: pid_t, _ signal: Int32, _ value: Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.queueSignal) { errno = code; return -1 }
        return daxpin_queue_signal(thread, signal, value)
    }

    /// `sigwaitinfo(2)` for the watched signals: the signal, the descriptor it names and whether
    /// the kernel sent it; -1 with errno (EINTR included) on failure.
    static func waitWatchedSignal(_ fd: inout Int32, _ fromKernel: inout Int32) -> Int32 {
        if let code = Syscalls.injectedFault(.waitSignal) { errno = code; return -1 }
        return daxpin_wait_watched_signal(&fd, &fromKernel)
    }
}

/// `stat(2)` itself: inside `Syscalls` the name means the wrapper.
private func libcStat(_ path: String, _ info: inout stat) -> Int32 {
    stat(path, &info)
}
