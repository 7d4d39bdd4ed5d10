import Dispatch

/// Where the log line of a revocation is written.
///
/// The lease watcher revokes every lease without a quiesce handler, one after another, so it
/// must never wait for anything but the kernel. A log handler is the application's code and
/// may block: stderr into a full pipe, a file on a slow or remote disk (glibc's timestamp
/// alone checks `/etc/localtime` on every line). On the watcher, that wait would hold up the
/// revocation of the next broken lease, and a lease not released within
/// `/proc/sys/fs/lease-break-time` is taken away by the kernel while the NIC may still write.
/// The watcher's lines are therefore written on a queue of their own, in order, at QoS utility
/// (below the application's threads); another thread (a release, a revocation with a quiesce
/// handler) writes its line itself.
enum RevocationLog {
    private static let queue = DispatchQueue(label: "DaxPin.revocation-log", qos: .utility)

    /// Runs `write` on the log queue for the watcher, else at once on `caller`'s thread.
    static func write(by caller: Revoker, _ write: @escaping @Sendable () -> Void) {
        if caller.isWatcher {
            queue.async(execute: write)
        } else {
            write()
        }
    }

    /// Returns once every line queued so far is written (for tests).
    static func drain() {
        queue.sync {}
    }
}
