/// The data path DaxPin's On-Demand Paging check drives: a target registered with ODP, a
/// pinned local buffer of the same length, and a loopback queue-pair pair between them on one
/// device. Made by the device's ``VerbsProvider``; torn down (queue pairs, then registrations,
/// then mappings) when released.
///
/// The target starts as a hole that reads zero and that nothing has touched, so that the first
/// transfer into it makes the device fault its pages in.
package protocol OnDemandPagingLoopback: AnyObject {
    /// The path MTU of the loopback connection, in bytes: one packet's payload at most.
    var pathMTU: Int { get }
    /// The CPU's view of the ODP-registered target.
    var target: UnsafeMutableRawBufferPointer { get }
    /// The CPU's view of the pinned local buffer (the same length as `target`).
    var local: UnsafeMutableRawBufferPointer { get }
    /// Whether the target still holds its bytes after ``invalidate()`` (a memfd does; a file's
    /// punched range reads zero).
    var invalidationKeepsContents: Bool { get }
    /// One signaled RDMA WRITE of `local[offset..<offset+length]` to the same range of the target.
    func write(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError>
    /// One signaled RDMA READ of the target's `[offset, offset+length)` into the same range of `local`.
    func read(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError>
    /// Drops every page of the target from the process (`MADV_DONTNEED` for a memfd, a hole
    /// punched through a file), which invalidates the device's ODP mappings of them: its next
    /// access must fault them in again.
    func invalidate() -> Result<Void, DaxPinError>
}
