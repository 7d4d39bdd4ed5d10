import Glibc

// The process, clock, environment and signal calls of ``Syscalls``: who this process is, what
// time it is, the command's `hold` and the examples' signal handling. Most cannot fail; those
// that can are fault points and throw the `Errno` like every other wrapper.
extension Syscalls {
    /// `getpid(2)`.
    package static func processID() -> pid_t { getpid() }

    /// `geteuid(2)`.
    package static func effectiveUserID() -> uid_t { geteuid() }

    /// `getuid(2)`.
    package static func realUserID() -> uid_t { getuid() }

    /// `getenv(3)`: the variable's value, or nil when it is not set.
    package static func environment(_ name: String) -> String? {
        getenv(name).map { String(cString: $0) }
    }

    /// `clock_gettime(2)` of `clock`.
    package static func now(_ clock: clockid_t) -> timespec {
        var time = timespec()
        clock_gettime(clock, &time)
        return time
    }

    /// `sysconf(_SC_PAGESIZE)`.
    package static func pageSize() -> Int { Int(sysconf(Int32(_SC_PAGESIZE))) }

    /// `sysconf(_SC_NPROCESSORS_ONLN)`, at least 1.
    package static func onlineProcessors() -> Int { max(1, Int(sysconf(Int32(_SC_NPROCESSORS_ONLN)))) }

    /// `nanosleep(2)` for `microseconds`, the rest slept again after a signal.
    package static func sleep(microseconds: Int) {
        var request = timespec(tv_sec: microseconds / 1_000_000, tv_nsec: (microseconds % 1_000_000) * 1000)
        var remaining = timespec()
        while nanosleep(&request, &remaining) == -1, errno == EINTR { request = remaining }
    }

    /// `sched_yield(2)`.
    package static func yieldProcessor() { _ = sched_yield() }

    /// `posix_memalign(3)`: `bytes` aligned to `alignment`, freed with `free(3)`.
    package static func allocateAligned(_ bytes: Int, alignment: Int) throws(Errno) -> UnsafeMutableRawPointer {
        var memory: UnsafeMutableRawPointer?
        try nothingOrReturnedErrno(.allocate) { posix_memalign(&memory, alignment, bytes) }
        guard let memory else { throw Errno.noMemory }
        return memory
    }

    /// `inet_pton(AF_INET)`: the address, or nil when `text` is not a dotted IPv4 address.
    package static func parseIPv4(_ text: String) -> in_addr? {
        var address = in_addr()
        return inet_pton(AF_INET, text, &address) == 1 ? address : nil
    }

    /// `inet_ntop(AF_INET)`: the dotted form of `address`.
    package static func formatIPv4(_ address: in_addr) -> String {
        var address = address
        var text = [CChar](repeating: 0, count: Int(INET_ADDRSTRLEN))
        guard inet_ntop(AF_INET, &address, &text, socklen_t(text.count)) != nil else { return "?" }
        return String(decoding: text.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `isatty(3)`.
    package static func isTerminal(_ fd: Int32) -> Bool { isatty(fd) == 1 }

    /// `fork(2)`: the child's process ID in the parent, 0 in the child.
    package static func fork() throws(Errno) -> pid_t {
        try valueOrErrno(.fork, retryOnInterrupt: false) { Glibc.fork() }
    }

    /// `posix_spawn(3)` of `arguments[0]` with `arguments` and this process's environment:
    /// the child's process ID.
    package static func spawn(_ arguments: [String]) throws(Errno) -> pid_t {
        var pid: pid_t = 0
        let argv = arguments.map { strdup($0) } + [nil]
        defer { argv.forEach { free($0) } }
        try nothingOrReturnedErrno(.fork) { posix_spawn(&pid, arguments[0], nil, nil, argv, environ) }
        return pid
    }

    /// `waitpid(2)` for `pid` to end: its wait status.
    @discardableResult
    package static func waitForExit(_ pid: pid_t) throws(Errno) -> Int32 {
        var status: Int32 = 0
        try nothingOrErrno(.fork) { waitpid(pid, &status, 0) == -1 ? -1 : 0 }
        return status
    }

    /// `pause(2)`, forever: for a child that only idles (async-signal-safe).
    package static func pauseForever() -> Never {
        while true { _ = pause() }
    }

    /// `signal(2)` with `handler` for each of `signals`, then `pthread_sigmask(SIG_UNBLOCK)` of
    /// them (a parent may have left them blocked or ignored: both survive exec).
    package static func handleSignals(_ signals: [Int32], with handler: @convention(c) (Int32) -> Void) throws(Errno) {
        var set = sigset_t()
        sigemptyset(&set)
        for number in signals {
            sigaddset(&set, number)
            try nothingOrErrno(.signalMask) { unsafeBitCast(signal(number, handler), to: Int.self) == -1 ? -1 : 0 }  // SIG_ERR
        }
        try nothingOrReturnedErrno(.signalMask) { pthread_sigmask(SIG_UNBLOCK, &set, nil) }
    }
}
