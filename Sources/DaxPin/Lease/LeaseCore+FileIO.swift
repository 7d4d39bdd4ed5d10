import Glibc
import SystemPackage

// File I/O through the lease's own descriptor: the way for the lease holder to read and write
// the file without opening it again, since any open of a leased file breaks the lease.
extension LeaseCore {
    /// `pread(2)` into `buffer` at `offset` until it is full or the file ends; the bytes read.
    func read(into buffer: UnsafeMutableRawBufferPointer, at offset: Int) throws(DaxPinError) -> Int {
        try withOwnDescriptor { fd throws(DaxPinError) in
            var done = 0
            while done < buffer.count {
                let count: Int
                do throws(Errno) { count = try Syscalls.pread(fd, buffer.baseAddress! + done, buffer.count - done, offset + done) } catch {
                    throw .systemCall(operation: "pread", path: path, errno: error)
                }
                guard count > 0 else { break }  // the end of the file
                done += count
            }
            return done
        }
    }

    /// `pwrite(2)` of all of `bytes` at `offset`.
    func write(_ bytes: UnsafeRawBufferPointer, at offset: Int) throws(DaxPinError) {
        guard access == .readWrite else {
            throw .systemCall(operation: "write through a read-only lease", path: path, errno: .permissionDenied)
        }
        try withOwnDescriptor { fd throws(DaxPinError) in
            var done = 0
            while done < bytes.count {
                let count: Int
                do throws(Errno) { count = try Syscalls.pwrite(fd, bytes.baseAddress! + done, bytes.count - done, offset + done) } catch {
                    throw .systemCall(operation: "pwrite", path: path, errno: error)
                }
                guard count > 0 else { throw .systemCall(operation: "pwrite", path: path, errno: .ioError) }
                done += count
            }
        }
    }

    /// Runs `body` with the lease's descriptor as a byte access: the teardown closes the
    /// descriptor only after `body` returns, and once revocation has begun this throws `.revoked`.
    private func withOwnDescriptor<R>(_ body: (Int32) throws(DaxPinError) -> R) throws(DaxPinError) -> R {
        guard fd >= 0 else {
            throw .featureUnavailable(feature: "file I/O", reason: "anonymous memory has no file")
        }
        try state.withLock { (s: inout State) throws(DaxPinError) in
            guard !s.accessClosed else { throw .revoked(path: path) }
            s.accessors += 1
        }
        defer { endAccess() }
        return try body(fd)
    }
}
