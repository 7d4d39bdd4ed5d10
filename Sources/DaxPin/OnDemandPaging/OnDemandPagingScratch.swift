import CLease
import Glibc

/// The On-Demand Paging check's target memory: a file of the kind ``OnDemandPagingTarget``
/// names, mapped shared and never touched, so that it is a hole that reads zero until the
/// device writes it. Unmapped and closed when released.
final class OnDemandPagingScratch {
    let kind: OnDemandPagingTarget
    /// The mapping.
    let bytes: UnsafeMutableRawBufferPointer
    /// Whether the mapping is `MAP_SYNC`: false for a file asked for as fs-dax whose file
    /// system turns out not to be DAX.
    let isSynchronous: Bool
    /// Kept open to punch holes through.
    private let fd: Int32

    /// An unnamed file in `directory`: `O_TMPFILE` where the file system has it, else a new
    /// name made exclusively and unlinked at once (overlayfs, 9p and older file systems answer
    /// `O_TMPFILE` with EOPNOTSUPP, EISDIR or EINVAL): its descriptor and its path.
    private static func unnamedFile(in directory: String) throws(DaxPinError) -> (Int32, String) {
        do throws(Errno) {
            return (try Syscalls.openTemporaryFile(in: directory, 0o600), directory)
        } catch where [.notSupported, .isDirectory, .invalidArgument].contains(error) {
            // fall back to a named file, below
        } catch {
            throw .systemCall(operation: "open(O_TMPFILE)", path: directory, errno: error)
        }
        let name = "\(directory)/.daxpin-odp-check-\(Syscalls.processID())-\(UInt32.random(in: 0...UInt32.max))"
        let named: Int32
        do throws(Errno) { named = try Syscalls.open(name, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, 0o600) } catch {
            throw .systemCall(operation: "open(O_CREAT|O_EXCL)", path: name, errno: error)
        }
        do throws(Errno) { try Syscalls.unlinkat(AT_FDCWD, name, 0) } catch {
            try? Syscalls.close(named)
            throw .systemCall(operation: "unlink", path: name, errno: error)
        }
        return (named, name)
    }

    /// Makes a `length`-byte scratch target; every step's failure is a typed error.
    init(_ kind: OnDemandPagingTarget, length: Int) throws(DaxPinError) {
        let (fd, path): (Int32, String)
        switch kind {
        case .memory:
            do throws(Errno) { (fd, path) = (try Syscalls.memfdCreate("daxpin-odp-check"), "daxpin-odp-check") } catch {
                throw .systemCall(operation: "memfd_create", path: "daxpin-odp-check", errno: error)
            }
        case .file(let directory, _):
            (fd, path) = try Self.unnamedFile(in: directory)
        }
        do throws(Errno) { try Syscalls.ftruncate(fd, off_t(length)) } catch {
            try? Syscalls.close(fd)
            throw .systemCall(operation: "ftruncate", path: path, errno: error)
        }
        switch Self.map(fd, kind, length: length) {
        case .success(let (address, synchronous)):
            bytes = UnsafeMutableRawBufferPointer(start: address, count: length)
            isSynchronous = synchronous
        case .failure(let error):
            try? Syscalls.close(fd)
            throw error
        }
        self.kind = kind
        self.fd = fd
    }

    deinit {
        if let base = bytes.baseAddress { try? Syscalls.munmap(base, bytes.count) }
        try? Syscalls.close(fd)
    }

    /// Whether the bytes survive ``invalidate()`` (a memfd's do; a punched hole reads zero).
    var invalidationKeepsContents: Bool { kind == .memory }

    /// Drops every page from the process, which invalidates a device's ODP mappings of them:
    /// `MADV_DONTNEED` for a memfd, a hole punched through a file (its blocks freed too).
    func invalidate() -> Result<Void, DaxPinError> {
        guard let base = bytes.baseAddress else { return .success(()) }
        switch kind {
        case .memory:
            do throws(Errno) { try Syscalls.madvise(base, bytes.count, MADV_DONTNEED) } catch {
                return .failure(.systemCall(operation: "madvise(MADV_DONTNEED)", path: kind.description, errno: error))
            }
        case .file:
            do throws(Errno) { try Syscalls.punchHole(fd, 0, off_t(bytes.count)) } catch {
                return .failure(.systemCall(operation: "fallocate(FALLOC_FL_PUNCH_HOLE)", path: kind.description, errno: error))
            }
        }
        return .success(())
    }

    /// Maps the file shared, without populating it: fs-dax with `MAP_SYNC` as a pin maps it,
    /// and plainly shared when the file system is not DAX after all.
    private static func map(_ fd: Int32, _ kind: OnDemandPagingTarget, length: Int)
        -> Result<(UnsafeMutableRawPointer, synchronous: Bool), DaxPinError> {
        if case .file(_, dax: true) = kind {
            let flags = Int32(DAXPIN_MAP_SHARED_VALIDATE) | Int32(DAXPIN_MAP_SYNC)
            do throws(Errno) {
                return .success((try Syscalls.mmap(nil, length, PROT_READ | PROT_WRITE, flags, fd, 0), true))
            } catch where error == .notSupported || error == .invalidArgument {
                // not DAX after all: map it plainly shared, below
            } catch {
                return .failure(.systemCall(operation: "mmap(MAP_SYNC)", path: kind.description, errno: error))
            }
        }
        do throws(Errno) {
            return .success((try Syscalls.mmap(nil, length, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), false))
        } catch {
            return .failure(.systemCall(operation: "mmap", path: kind.description, errno: error))
        }
    }
}
