import Glibc

/// The files this process holds leases on, by device and inode, so that a second
/// ``LayoutLease`` on one of them is refused before it opens the file: any `open(2)` of a
/// leased file breaks the lease, even an open by the process that holds it.
///
/// Kept apart from ``PinRegistry``: that one learns of a lease after it is taken and forgets it
/// after the teardown has begun, while a claim must be checked and made in one step before the
/// open, and given up only once the descriptor is closed (until then the kernel would refuse a
/// new lease on the file anyway).
final class OwnLeases: Sendable {
    static let shared = OwnLeases()

    /// A file as the kernel names it: the same file under another path (a hard link, a bind
    /// mount, `..`) has the same identity.
    struct FileIdentity: Hashable, Sendable {
        let device: UInt64
        let inode: UInt64

        init(_ info: stat) {
            device = UInt64(info.st_dev)
            inode = UInt64(info.st_ino)
        }
    }

    /// One lease's hold on a file, given up with ``release(_:)``.
    struct Claim: Sendable {
        let file: FileIdentity
        let token: UInt64
    }

    private struct Holder {
        let token: UInt64
        let path: String
        let access: Access
        /// A forked child inherits this table but not the leases (their descriptors are closed in it).
        let process: pid_t
    }

    private struct Table {
        var holders: [FileIdentity: [Holder]] = [:]
        var nextToken: UInt64 = 0
    }

    private let table = AnnotatedMutex(Table())

    /// Records a lease on `file`, or throws ``DaxPinError/alreadyLeased(path:existingPath:existingAccess:)``
    /// naming a lease this process already holds on it. Read-only leases may share a file: a
    /// read-only open does not break a read lease.
    func claim(_ file: FileIdentity, path: String, access: Access) throws(DaxPinError) -> Claim {
        let process = Syscalls.processID()
        return try table.withLock { (t: inout Table) throws(DaxPinError) -> Claim in
            let live = (t.holders[file] ?? []).filter { $0.process == process }
            if let conflict = live.first(where: { access == .readWrite || $0.access == .readWrite }) {
                throw .alreadyLeased(path: path, existingPath: conflict.path, existingAccess: conflict.access)
            }
            t.nextToken += 1
            t.holders[file] = live + [Holder(token: t.nextToken, path: path, access: access, process: process)]
            return Claim(file: file, token: t.nextToken)
        }
    }

    /// Checks that `fd` is the file `claim` was made for; if the path was replaced between the
    /// `stat` and the `open`, moves the claim to the file opened (or throws, and the caller
    /// closes `fd`).
    func confirm(_ claim: Claim, fd: Int32, path: String, access: Access) throws(DaxPinError) -> Claim {
        guard let info = try? Syscalls.fstat(fd), FileIdentity(info) != claim.file else { return claim }
        release(claim)
        return try self.claim(FileIdentity(info), path: path, access: access)
    }

    /// Gives up a claim (after the lease's descriptor is closed, or when taking the lease failed).
    func release(_ claim: Claim) {
        table.withLock { t in
            let rest = (t.holders[claim.file] ?? []).filter { $0.token != claim.token }
            t.holders[claim.file] = rest.isEmpty ? nil : rest
        }
    }

    /// The number of files this process holds claims on (for tests).
    var count: Int { table.withLock { $0.holders.count } }
}
