import CLease
import Glibc

// The file, descriptor, metadata and signal calls of ``Syscalls``: opening and classifying what
// is pinned, the pin registry's files, `persist`, the ODP check's buffers, the completion and
// connection channels' waits, and the lease watcher's signals.
extension Syscalls {
    /// `open(2)`.
    package static func open(_ path: String, _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try valueOrErrno(.open) { Glibc.open(path, flags, mode) }
    }

    /// `openat(2)`.
    static func openat(_ directory: Int32, _ name: String, _ flags: Int32, _ mode: mode_t = 0) throws(Errno) -> Int32 {
        try valueOrErrno(.open) { Glibc.openat(directory, name, flags, mode) }
    }

    /// `stat(2)`.
    package static func stat(_ path: String) throws(Errno) -> Glibc.stat {
        var info = Glibc.stat()
        try nothingOrErrno(.stat) { libcStat(path, &info) }
        return info
    }

    /// `fstat(2)`.
    static func fstat(_ fd: Int32) throws(Errno) -> Glibc.stat {
        var info = Glibc.stat()
        try nothingOrErrno(.stat) { Glibc.fstat(fd, &info) }
        return info
    }

    /// `fstatfs(2)`, the file system's magic number only.
    static func fileSystemMagic(_ fd: Int32) throws(Errno) -> UInt64 {
        var magic: UInt64 = 0
        try nothingOrErrno(.statfs) { daxpin_fs_magic(fd, &magic) }
        return magic
    }

    /// `statx(2)`'s `STATX_ATTR_DAX`: 1, 0, or -1 when the kernel does not say.
    static func statxDAX(_ fd: Int32) throws(Errno) -> Int32 {
        var isDAX: Int32 = -1
        try nothingOrErrno(.statx) { daxpin_statx_dax(fd, &isDAX) }
        return isDAX
    }

    /// `read(2)`: the bytes read (0 at the end of the file).
    static func read(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) throws(Errno) -> Int {
        try valueOrErrno(.read) { Glibc.read(fd, buffer, count) }
    }

    /// `write(2)`: the bytes written.
    package static func write(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int) throws(Errno) -> Int {
        try valueOrErrno(.write) { Glibc.write(fd, buffer, count) }
    }

    /// `pread(2)`.
    static func pread(_ fd: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int, _ offset: Int) throws(Errno) -> Int {
        try valueOrErrno(.read) { Glibc.pread(fd, buffer, count, off_t(offset)) }
    }

    /// `pwrite(2)`.
    static func pwrite(_ fd: Int32, _ buffer: UnsafeRawPointer?, _ count: Int, _ offset: Int) throws(Errno) -> Int {
        try valueOrErrno(.write) { Glibc.pwrite(fd, buffer, count, off_t(offset)) }
    }

    /// `write(2)` of all of `bytes`, continuing after short writes: the one write loop for whole
    /// buffers (the registry's and the metrics' files, terminal output).
    package static func writeAll(_ fd: Int32, _ bytes: UnsafeRawBufferPointer) throws(Errno) {
        var done = 0
        while done < bytes.count {
            let count = try write(fd, bytes.baseAddress! + done, bytes.count - done)
            guard count > 0 else { throw Errno.ioError }
            done += count
        }
    }

    /// `writeAll` of an array.
    package static func writeAll(_ fd: Int32, _ bytes: [UInt8]) throws(Errno) {
        let failed = bytes.withUnsafeBytes { buffer in Errno.of { () throws(Errno) in try writeAll(fd, buffer) } }
        if let failed { throw failed }
    }

    /// `fdatasync(2)`.
    static func fdatasync(_ fd: Int32) throws(Errno) {
        try nothingOrErrno(.sync) { Glibc.fdatasync(fd) }
    }

    /// `readlink(2)`: the link's target.
    package static func readLink(_ path: String) throws(Errno) -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let capacity = buffer.count - 1
        let count = try valueOrErrno(.readLink) { Glibc.readlink(path, &buffer, capacity) }
        return String(decoding: buffer[..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `unlinkat(2)`.
    static func unlinkat(_ directory: Int32, _ name: String, _ flags: Int32) throws(Errno) {
        try nothingOrErrno(.unlink) { Glibc.unlinkat(directory, name, flags) }
    }

    /// `unlink(2)`.
    package static func unlink(_ path: String) throws(Errno) {
        try nothingOrErrno(.unlink) { Glibc.unlink(path) }
    }

    /// `renameat(2)`.
    static func renameat(_ fromDirectory: Int32, _ from: String, _ toDirectory: Int32, _ to: String) throws(Errno) {
        try nothingOrErrno(.rename) { Glibc.renameat(fromDirectory, from, toDirectory, to) }
    }

    /// `mkdir(2)`.
    static func mkdir(_ path: String, _ mode: mode_t) throws(Errno) {
        try nothingOrErrno(.mkdir) { Glibc.mkdir(path, mode) }
    }

    /// `memfd_create(2)` with `MFD_CLOEXEC`.
    static func memfdCreate(_ name: String) throws(Errno) -> Int32 {
        try valueOrErrno(.open) { daxpin_memfd_create(name) }
    }

    /// `open(2)` of an unnamed file in `directory` (`O_RDWR | O_TMPFILE | O_EXCL | O_CLOEXEC`):
    /// gone with its last descriptor, never linked.
    static func openTemporaryFile(in directory: String, _ mode: mode_t) throws(Errno) -> Int32 {
        try valueOrErrno(.open) { Glibc.open(directory, O_RDWR | Int32(DAXPIN_O_TMPFILE) | O_EXCL | O_CLOEXEC, mode) }
    }

    /// `fallocate(2)` with `FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE`.
    static func punchHole(_ fd: Int32, _ offset: off_t, _ length: off_t) throws(Errno) {
        try nothingOrErrno(.fallocate) { daxpin_punch_hole(fd, Int64(offset), Int64(length)) }
    }

    /// `ftruncate(2)`.
    package static func ftruncate(_ fd: Int32, _ length: off_t) throws(Errno) {
        try nothingOrErrno(.truncate) { Glibc.ftruncate(fd, length) }
    }

    /// `fcntl(F_GETFL)` then `fcntl(F_SETFL)` with `O_NONBLOCK` added.
    static func setNonBlocking(_ fd: Int32) throws(Errno) {
        let flags = try valueOrErrno(.setFlags) { Glibc.fcntl(fd, F_GETFL) }
        try nothingOrErrno(.setFlags) { Glibc.fcntl(fd, F_SETFL, flags | O_NONBLOCK) }
    }

    /// `poll(2)`: how many descriptors are ready (0 when `milliseconds` passed). An `EINTR` is
    /// retried with the whole timeout again: callers bound their waits by a deadline.
    static func poll(_ descriptors: inout [pollfd], _ milliseconds: Int32) throws(Errno) -> Int32 {
        try valueOrErrno(.poll) { Glibc.poll(&descriptors, nfds_t(descriptors.count), milliseconds) }
    }

    /// `poll(2)` on one descriptor.
    static func poll(_ descriptor: inout pollfd, _ milliseconds: Int32) throws(Errno) -> Int32 {
        try valueOrErrno(.poll) { Glibc.poll(&descriptor, 1, milliseconds) }
    }

    /// `pthread_create(3)` of a detached thread running `start(argument)`.
    static func startDetachedThread(_ start: @convention(c) (UnsafeMutableRawPointer?) -> UnsafeMutableRawPointer?,
                                    _ argument: UnsafeMutableRawPointer) throws(Errno) {
        var thread = pthread_t()
        try nothingOrReturnedErrno(.createThread) { pthread_create(&thread, nil, start, argument) }
        _ = pthread_detach(thread)
    }

    /// `opendir(3)`: a directory stream.
    static func openDirectory(_ path: String) throws(Errno) -> OpaquePointer {
        try pointerOrErrno(.openDirectory) { opendir(path) }
    }

    /// `readdir(3)`: the next entry, nil at the end (an error reading the directory ends it too:
    /// callers list what they could read).
    static func readDirectory(_ stream: OpaquePointer) -> UnsafeMutablePointer<dirent>? {
        readdir(stream)
    }

    /// `closedir(3)` (not a fault point: the stream is freed whatever it answers).
    static func closeDirectory(_ stream: OpaquePointer) {
        _ = closedir(stream)
    }

    /// `madvise(2)`.
    static func madvise(_ address: UnsafeMutableRawPointer, _ length: Int, _ advice: Int32) throws(Errno) {
        try nothingOrErrno(.madvise) { Glibc.madvise(address, length, advice) }
    }

    /// `msync(2)`.
    static func msync(_ address: UnsafeMutableRawPointer, _ length: Int, _ flags: Int32) throws(Errno) {
        try nothingOrErrno(.msync) { Glibc.msync(address, length, flags) }
    }

    /// `rt_tgsigqueueinfo(2)` to one thread of this process, with `value` as the payload.
    package static func queueSignal(_ thread: pid_t, _ signal: Int32, _ value: Int32) throws(Errno) {
        try nothingOrErrno(.queueSignal) { daxpin_queue_signal(thread, signal, value) }
    }

    /// `sigwaitinfo(2)` for the watched signals: the signal, the descriptor it names and whether
    /// the kernel sent it. Not retried on `EINTR`: the watcher's loop checks its state after
    /// every wake.
    static func waitWatchedSignal(_ fd: inout Int32, _ fromKernel: inout Int32) throws(Errno) -> Int32 {
        try valueOrErrno(.waitSignal, retryOnInterrupt: false) { daxpin_wait_watched_signal(&fd, &fromKernel) }
    }
}

/// `stat(2)` itself: inside `Syscalls` the name means the wrapper.
private func libcStat(_ path: String, _ info: inout stat) -> Int32 {
    stat(path, &info)
}
