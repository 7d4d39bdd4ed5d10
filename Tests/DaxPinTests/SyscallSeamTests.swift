@testable import DaxPin
import CLease
import Glibc
import Testing

extension DaxPin {
    /// The syscall seam (`Syscalls`) owns errno and `EINTR`: every wrapper either returns the
    /// call's value or throws the `Errno` it failed with, and an interrupted call is retried
    /// inside the seam, once, in one place. Each fault point is driven here against real kernel
    /// objects of the host (a scratch file, a mapping, a directory, a thread, a child process):
    /// a forced `EINTR` must not reach the caller, and a forced failure must arrive as its `Errno`.
    @Suite(.serialized) struct SyscallSeam {
        init() { SyscallFaults.disarm() }

        /// A scratch directory holding a one-page file opened read-write; what a call leaves
        /// behind (a descriptor, a mapping, a child) is undone without the seam, whatever failed.
        final class Scratch: @unchecked Sendable {
            let directory: String
            let path: String
            let fd: Int32
            var mappings: [(UnsafeMutableRawPointer, Int)] = []
            var descriptors: [Int32] = []

            init() throws {
                var template = Array("/tmp/daxpin-seam-XXXXXX".utf8CString)
                let made = template.withUnsafeMutableBufferPointer { mkdtemp($0.baseAddress!) }
                let directory = try #require(made.map { String(cString: $0) })
                self.directory = directory
                path = directory + "/file"
                fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o600)
                try #require(fd >= 0 && ftruncate(fd, 4096) == 0)
            }

            /// A fresh shared mapping of the file, unmapped at the end.
            func map() throws(Errno) -> UnsafeMutableRawPointer {
                let base = try Syscalls.mmap(nil, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)
                mappings.append((base, 4096))
                return base
            }

            deinit {
                for (base, length) in mappings { _ = munmap(base, length) }
                for descriptor in descriptors { _ = Glibc.close(descriptor) }
                _ = Glibc.close(fd)
                for name in ["file", "renamed", "other", "sub"] { _ = unlink(directory + "/" + name); _ = rmdir(directory + "/" + name) }
                _ = rmdir(directory)
            }
        }

        /// One fault point, driven for real.
        struct Call: Sendable, CustomTestStringConvertible {
            let point: Syscall
            let name: String
            let run: @Sendable (Scratch) throws(Errno) -> Void
            var testDescription: String { name }
        }

        static let calls: [Call] = [
            Call(point: .open, name: "open") { s throws(Errno) in s.descriptors.append(try Syscalls.open(s.path, O_RDONLY | O_CLOEXEC)) },
            Call(point: .open, name: "openat") { s throws(Errno) in s.descriptors.append(try Syscalls.openat(AT_FDCWD, s.path, O_RDONLY | O_CLOEXEC)) },
            Call(point: .open, name: "memfd_create") { s throws(Errno) in s.descriptors.append(try Syscalls.memfdCreate("daxpin-seam")) },
            Call(point: .stat, name: "stat") { s throws(Errno) in _ = try Syscalls.stat(s.path) },
            Call(point: .stat, name: "fstat") { s throws(Errno) in _ = try Syscalls.fstat(s.fd) },
            Call(point: .statfs, name: "fstatfs") { s throws(Errno) in _ = try Syscalls.fileSystemMagic(s.fd) },
            Call(point: .statx, name: "statx") { s throws(Errno) in _ = try Syscalls.statxDAX(s.fd) },
            Call(point: .read, name: "pread") { s throws(Errno) in
                var byte: UInt8 = 0
                _ = try Syscalls.pread(s.fd, &byte, 1, 0)
            },
            Call(point: .write, name: "pwrite") { s throws(Errno) in
                var byte: UInt8 = 7
                _ = try Syscalls.pwrite(s.fd, &byte, 1, 0)
            },
            Call(point: .write, name: "write (whole buffer)") { s throws(Errno) in try Syscalls.writeAll(s.fd, [1, 2, 3]) },
            Call(point: .sync, name: "fdatasync") { s throws(Errno) in try Syscalls.fdatasync(s.fd) },
            Call(point: .readLink, name: "readlink") { _ throws(Errno) in _ = try Syscalls.readLink("/proc/self/exe") },
            Call(point: .mkdir, name: "mkdir") { s throws(Errno) in try Syscalls.mkdir(s.directory + "/sub", 0o700) },
            Call(point: .unlink, name: "unlink") { s throws(Errno) in
                _ = Glibc.close(Glibc.open(s.directory + "/other", O_CREAT | O_WRONLY | O_CLOEXEC, 0o600))
                try Syscalls.unlink(s.directory + "/other")
            },
            Call(point: .rename, name: "renameat") { s throws(Errno) in try Syscalls.renameat(AT_FDCWD, s.path, AT_FDCWD, s.directory + "/renamed") },
            Call(point: .truncate, name: "ftruncate") { s throws(Errno) in try Syscalls.ftruncate(s.fd, 8192) },
            Call(point: .fallocate, name: "fallocate(PUNCH_HOLE)") { s throws(Errno) in try Syscalls.punchHole(s.fd, 0, 4096) },
            Call(point: .setFlags, name: "fcntl(O_NONBLOCK)") { s throws(Errno) in try Syscalls.setNonBlocking(s.fd) },
            Call(point: .poll, name: "poll") { s throws(Errno) in
                var descriptor = pollfd(fd: s.fd, events: Int16(POLLIN), revents: 0)
                _ = try Syscalls.poll(&descriptor, 0)
            },
            Call(point: .mmap, name: "mmap") { s throws(Errno) in _ = try s.map() },
            Call(point: .munmap, name: "munmap") { s throws(Errno) in
                let base = try s.map()
                try Syscalls.munmap(base, 4096)
                s.mappings.removeAll { $0.0 == base }
            },
            Call(point: .madvise, name: "madvise") { s throws(Errno) in try Syscalls.madvise(try s.map(), 4096, MADV_NORMAL) },
            Call(point: .msync, name: "msync") { s throws(Errno) in try Syscalls.msync(try s.map(), 4096, MS_SYNC) },
            Call(point: .openDirectory, name: "opendir") { s throws(Errno) in Syscalls.closeDirectory(try Syscalls.openDirectory(s.directory)) },
            Call(point: .getLease, name: "fcntl(F_GETLEASE)") { s throws(Errno) in _ = try Syscalls.getLease(s.fd) },
            Call(point: .setSignal, name: "fcntl(F_SETSIG)") { s throws(Errno) in try Syscalls.setSignal(s.fd, 0) },
            Call(point: .createThread, name: "pthread_create") { _ throws(Errno) in
                try Syscalls.startDetachedThread({ _ in nil }, UnsafeMutableRawPointer(bitPattern: 1)!)
            },
            Call(point: .allocate, name: "posix_memalign") { _ throws(Errno) in free(try Syscalls.allocateAligned(8192, alignment: 4096)) },
            Call(point: .signalMask, name: "signal + pthread_sigmask") { _ throws(Errno) in
                try Syscalls.handleSignals([SIGURG]) { _ in }  // SIGURG: ignored by default, sent by nobody here
            },
            Call(point: .fork, name: "posix_spawn + waitpid") { _ throws(Errno) in
                let child = try Syscalls.spawn(["/bin/true"])
                let status = try Syscalls.waitForExit(child)
                precondition(status == 0, "/bin/true exited with status \(status)")
            },
        ]

        @Test("a forced EINTR at each fault point is retried inside the seam: the call succeeds", arguments: calls)
        func interruptedCallIsRetried(call: Call) throws {
            defer { SyscallFaults.disarm() }
            let scratch = try Scratch()
            SyscallFaults.arm(call.point, errnos: [EINTR])
            #expect(throws: Never.self) { try call.run(scratch) }
            #expect(SyscallFaults.isSpent(call.point), "\(call.name) never reached its fault point")
        }

        @Test("a forced failure at each fault point arrives as its Errno, not in errno", arguments: calls)
        func failureIsThrownAsErrno(call: Call) throws {
            defer { SyscallFaults.disarm() }
            let scratch = try Scratch()
            SyscallFaults.arm(call.point, errno: EHOSTUNREACH)
            errno = 0
            #expect(throws: Errno.noRouteToHost) { try call.run(scratch) }
            #expect(SyscallFaults.isSpent(call.point))
            #expect(errno == 0, "a forced failure set errno \(errno): callers must not need it")
        }

        @Test("close is not retried on EINTR (Linux releases the descriptor anyway): the EINTR is reported")
        func closeIsNotRetried() throws {
            defer { SyscallFaults.disarm() }
            let scratch = try Scratch()
            let fd = Glibc.dup(scratch.fd)
            try #require(fd >= 0)
            SyscallFaults.arm(.close, errnos: [EINTR, EHOSTUNREACH])
            #expect(throws: Errno.interrupted) { try Syscalls.close(fd) }
            #expect(!SyscallFaults.isSpent(.close), "close was called twice")
            SyscallFaults.disarm()
            #expect(throws: Never.self) { try Syscalls.close(fd) }
        }

        @Test("a fork refused by the system is a typed error, and no child exists")
        func forkRefused() {
            defer { SyscallFaults.disarm() }
            SyscallFaults.arm(.fork, errno: EAGAIN)
            #expect(throws: Errno.resourceTemporarilyUnavailable) { _ = try Syscalls.fork() }
            #expect(SyscallFaults.isSpent(.fork))
        }
    }
}
