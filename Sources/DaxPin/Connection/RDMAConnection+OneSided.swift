import CIbverbs
import CRdmacm
import Glibc
import Synchronization

// One-sided RDMA WRITE and READ on the connection's queue pair, posted and completed.
extension RDMAConnection {

    /// Posts an RDMA WRITE of `local` to `remote` at `offset` with `id` (below 2^63), without waiting;
    /// collect its completion with ``completions(timeout:)``.
    ///
    /// With `signaled` false the WRITE produces a completion only if it fails: post a signaled
    /// work request after it (a READ, a ``send(_:timeout:)``) and take that one's success as
    /// the WRITE's, since a reliable connection completes its send queue in order. Saves a
    /// completion (and possibly a wake-up) per WRITE.
    public func postWrite(_ local: QueuePair.LocalBuffer, to remote: MemoryRegion.RemoteAccess, offset: Int, id: UInt64,
                          signaled: Bool = true) throws(DaxPinError) {
        try postRDMA(IBV_WR_RDMA_WRITE, local, remote, offset, id, signaled: signaled)
    }

    /// Posts an RDMA WRITE (as ``postWrite(_:to:offset:id:signaled:)``) and an RDMA READ of
    /// `readLocal.length` bytes at `readOffset` behind it, in one `ibv_post_send` (one doorbell
    /// for both). The responder executes the READ after the WRITE, so its completion means the
    /// WRITE was placed: the one-sided flush of SNIA's appliance persistency method.
    public func postWrite(_ local: QueuePair.LocalBuffer, to remote: MemoryRegion.RemoteAccess, offset: Int, id: UInt64,
                          signaled: Bool = true, thenRead readLocal: QueuePair.LocalBuffer, at readOffset: Int,
                          readID: UInt64) throws(DaxPinError) {
        precondition(id & SendQueue.ownBit == 0 && readID & SendQueue.ownBit == 0, "work request ids must be below 2^63")
        try sends.post { () throws(Errno) in
            guard let qp = self.id.pointee.qp else { throw Errno.invalidArgument }
            try postWriteThenRead(on: qp, write: local, writeID: id, writeSignaled: signaled, read: readLocal, readID: readID,
                                  remote: remote, writeOffset: offset, readOffset: readOffset)
        }
    }

    /// Posts an RDMA READ from `remote` at `offset` into `local` with `id` (below 2^63), without waiting.
    public func postRead(into local: QueuePair.LocalBuffer, from remote: MemoryRegion.RemoteAccess, offset: Int, id: UInt64) throws(DaxPinError) {
        try postRDMA(IBV_WR_RDMA_READ, local, remote, offset, id)
    }

    /// Completions of posted WRITEs and READs; waits up to `timeout` for at least one. Empty on timeout.
    public func completions(timeout: Duration) throws(DaxPinError) -> [WorkCompletion] {
        var done: [WorkCompletion] = []
        try completions(into: &done, timeout: timeout)
        return done
    }

    /// Appends the completions of posted WRITEs and READs to `done`; waits up to `timeout` for
    /// at least one. Returns how many were appended (0 on timeout). Allocates nothing when `done`
    /// has room: for loops that harvest once per operation (queue depth 1), reuse one array.
    @discardableResult
    public func completions(into done: inout [WorkCompletion], timeout: Duration) throws(DaxPinError) -> Int {
        try sends.completions(into: &done, timeout: timeout)
    }

    /// RDMA WRITE that waits for its completion (at most `timeout`).
    public func write(_ local: QueuePair.LocalBuffer, to remote: MemoryRegion.RemoteAccess, offset: Int = 0,
                      timeout: Duration = .seconds(10)) throws(DaxPinError) -> QueuePair.Completion {
        try postAndWait(IBV_WR_RDMA_WRITE, local, remote, offset, timeout)
    }

    /// RDMA READ that waits for its completion (at most `timeout`).
    public func read(into local: QueuePair.LocalBuffer, from remote: MemoryRegion.RemoteAccess, offset: Int = 0,
                     timeout: Duration = .seconds(10)) throws(DaxPinError) -> QueuePair.Completion {
        try postAndWait(IBV_WR_RDMA_READ, local, remote, offset, timeout)
    }

    private func postRDMA(_ opcode: ibv_wr_opcode, _ local: QueuePair.LocalBuffer, _ remote: MemoryRegion.RemoteAccess,
                          _ offset: Int, _ wrID: UInt64, signaled: Bool = true) throws(DaxPinError) {
        precondition(wrID & SendQueue.ownBit == 0, "work request ids must be below 2^63")
        try sends.post { () throws(Errno) in
            guard let qp = id.pointee.qp else { throw Errno.invalidArgument }
            try postOneSided(on: qp, opcode, id: wrID, local: local, remote: remote, offset: offset, signaled: signaled)
        }
    }

    private func postAndWait(_ opcode: ibv_wr_opcode, _ local: QueuePair.LocalBuffer, _ remote: MemoryRegion.RemoteAccess,
                             _ offset: Int, _ timeout: Duration) throws(DaxPinError) -> QueuePair.Completion {
        try sends.postAndWait(timeout: timeout) { (wrID) throws(Errno) in
            guard let qp = id.pointee.qp else { throw Errno.invalidArgument }
            try postOneSided(on: qp, opcode, id: wrID, local: local, remote: remote, offset: offset)
        }
    }
}
