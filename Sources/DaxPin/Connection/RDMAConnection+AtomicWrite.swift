import CIbverbs
import CRdmacm
import Glibc

// RDMA ATOMIC WRITE (IBTA 1.5): an 8-byte write the responder places whole.
extension RDMAConnection {
    /// Posts an RDMA ATOMIC WRITE of `value` (8 bytes, in this host's byte order) to `remote`
    /// at `offset` (a multiple of 8) with `id` (below 2^63), without waiting; collect its
    /// completion with ``completions(timeout:)``. A peer reading the 8 bytes sees the old value
    /// or `value`, never a mix: a commit record written after a batch's WRITEs (and made
    /// durable by a ``postFlush(_:offset:length:id:)`` behind it) is never torn.
    ///
    /// The responder checks the target as for a WRITE: an offset that is not a multiple of 8,
    /// or 8 bytes not inside the region, completes with an error and writes nothing.
    ///
    /// - Throws: `.featureUnavailable` unless the connection was made with
    ///   ``Options/postsAtomicWrite``; `.deviceFailure` when the post fails.
    public func postAtomicWrite(_ value: UInt64, to remote: MemoryRegion.RemoteAccess, offset: Int, id wrID: UInt64) throws(DaxPinError) {
        precondition(wrID & SendQueue.ownBit == 0, "work request ids must be below 2^63")
        let qp = try atomicWritingQueuePair()
        try sends.post(operation: "ibv_wr_complete") { () throws(Errno) in
            try Self.postAtomicWrite(on: qp, id: wrID, value: value, remote: remote, offset: offset)
        }
    }

    /// RDMA ATOMIC WRITE (as ``postAtomicWrite(_:to:offset:id:)``) that waits for its
    /// completion (at most `timeout`).
    public func atomicWrite(_ value: UInt64, to remote: MemoryRegion.RemoteAccess, offset: Int,
                            timeout: Duration = .seconds(10)) throws(DaxPinError) -> QueuePair.Completion {
        let qp = try atomicWritingQueuePair()
        return try sends.postAndWait(timeout: timeout, operation: "ibv_wr_complete") { (wrID) throws(Errno) in
            try Self.postAtomicWrite(on: qp, id: wrID, value: value, remote: remote, offset: offset)
        }
    }

    private func atomicWritingQueuePair() throws(DaxPinError) -> UnsafeMutablePointer<ibv_qp_ex> {
        if let refusal = RDMABuildFeatures.current.atomicWriteRefusal { throw refusal }
        guard options.postsAtomicWrite, let extendedQueuePair else {
            throw .featureUnavailable(feature: "RDMA ATOMIC WRITE",
                                      reason: "the connection to \(peer) was made without Options.postsAtomicWrite: connect with it to post ATOMIC WRITE")
        }
        return extendedQueuePair
    }

    /// One signaled ATOMIC WRITE in its own batch, posted with `ibv_wr_complete`. The
    /// provider copies the 8 bytes while building the request, so they may live on the stack.
    private static func postAtomicWrite(on qp: UnsafeMutablePointer<ibv_qp_ex>, id: UInt64, value: UInt64,
                                        remote: MemoryRegion.RemoteAccess, offset: Int) throws(Errno) {
        VerbsCalls.ibv_wr_start(qp)
        qp.pointee.wr_id = id
        qp.pointee.wr_flags = UInt32(IBV_SEND_SIGNALED.rawValue)
        var bytes = value
        let refused: Errno? = withUnsafeBytes(of: &bytes) {
            do throws(Errno) {
                try VerbsCalls.ibv_wr_atomic_write(qp, rkey: remote.rkey, address: remote.address &+ UInt64(bitPattern: Int64(offset)),
                                                   value: $0.baseAddress!)
                return nil
            } catch { return error }
        }
        if let refused { VerbsCalls.ibv_wr_abort(qp); throw refused }
        try VerbsCalls.ibv_wr_complete(qp)
    }
}
