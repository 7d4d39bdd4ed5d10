/// The data path DaxPin's On-Demand Paging check drives: a target registered with ODP, a
/// pinned local buffer of the same length, and a loopback queue-pair pair between them on one
/// device. Made by the device's ``VerbsProvider``; torn down (queue pairs, then registrations,
/// then mappings) when released.
package protocol OnDemandPagingLoopback: AnyObject {
    /// The path MTU of the loopback connection, in bytes: one packet's payload at most.
    var pathMTU: Int { get }
    /// The CPU's view of the ODP-registered target.
    var target: UnsafeMutableRawBufferPointer { get }
    /// The CPU's view of the pinned local buffer (the same length as `target`).
    var local: UnsafeMutableRawBufferPointer { get }
    /// One signaled RDMA WRITE of `local[offset..<offset+length]` to the same range of the target.
    func write(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError>
    /// One signaled RDMA READ of the target's `[offset, offset+length)` into the same range of `local`.
    func read(offset: Int, length: Int) -> Result<QueuePair.Completion, DaxPinError>
}
