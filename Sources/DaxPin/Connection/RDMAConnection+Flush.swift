import CIbverbs
import CRdmacm
import Glibc
import SystemPackage

// Native RDMA FLUSH: the requester posts it after WRITEs, the responder's queue pair admits it.
extension RDMAConnection {
    /// Posts an RDMA FLUSH of `length` bytes at `offset` in `remote` to the persistence domain
    /// (`IBV_FLUSH_PERSISTENT`, `IBV_FLUSH_RANGE`) with `id` (below 2^63), without waiting. The
    /// responder executes it after every WRITE posted before it on this connection, so its
    /// successful completion means those WRITEs are persistent. Collect it with
    /// ``completions(timeout:)``.
    ///
    /// - Throws: `.featureUnavailable` unless the connection was made with
    ///   ``Options/postsFlush``; `.deviceFailure` when the post fails.
    public func postFlush(_ remote: MemoryRegion.RemoteAccess, offset: Int, length: Int, id wrID: UInt64) throws(DaxPinError) {
        precondition(wrID & SendQueue.ownBit == 0, "work request ids must be below 2^63")
        let qp = try flushingQueuePair()
        try sends.post(operation: "ibv_wr_complete") { () throws(Errno) in try Self.postFlush(on: qp, id: wrID, remote: remote, offset: offset, length: length) }
    }

    /// Posts an RDMA WRITE of `local` to `remote` at `offset` and an RDMA FLUSH of
    /// `flushLength` bytes at `flushOffset` behind it, in one batch (one doorbell for both), as
    /// ``postFlush(_:offset:length:id:)`` would after a ``postWrite(_:to:offset:id:signaled:)``.
    /// With `signaled` false the WRITE produces a completion only if it fails, and the FLUSH's
    /// successful completion stands for both: durable.
    public func postWrite(_ local: QueuePair.LocalBuffer, to remote: MemoryRegion.RemoteAccess, offset: Int, id: UInt64,
                          signaled: Bool = true, thenFlush flushOffset: Int, length flushLength: Int,
                          flushID: UInt64) throws(DaxPinError) {
        precondition(id & SendQueue.ownBit == 0 && flushID & SendQueue.ownBit == 0, "work request ids must be below 2^63")
        let qp = try flushingQueuePair()
        let write = BatchedWrite(local: local, offset: offset, id: id, signaled: signaled)
        try sends.post(operation: "ibv_wr_complete") { () throws(Errno) in
            try Self.postFlush(on: qp, id: flushID, remote: remote, offset: flushOffset, length: flushLength, after: write)
        }
    }

    /// RDMA FLUSH (as ``postFlush(_:offset:length:id:)``) that waits for its completion (at most
    /// `timeout`). `.success` means the WRITEs posted before it on this connection are persistent.
    public func flush(_ remote: MemoryRegion.RemoteAccess, offset: Int = 0, length: Int,
                      timeout: Duration = .seconds(10)) throws(DaxPinError) -> QueuePair.Completion {
        let qp = try flushingQueuePair()
        return try sends.postAndWait(timeout: timeout, operation: "ibv_wr_complete") { (wrID) throws(Errno) in
            try Self.postFlush(on: qp, id: wrID, remote: remote, offset: offset, length: length)
        }
    }

    private func flushingQueuePair() throws(DaxPinError) -> UnsafeMutablePointer<ibv_qp_ex> {
        if let refusal = RDMABuildFeatures.current.flushRefusal { throw refusal }
        guard options.postsFlush, let extendedQueuePair else {
            throw .featureUnavailable(feature: "RDMA FLUSH",
                                      reason: "the connection to \(peer) was made without Options.postsFlush: connect with it to post FLUSH")
        }
        return extendedQueuePair
    }

    /// A WRITE to the FLUSH's region, posted in the same batch just before it.
    private struct BatchedWrite {
        let local: QueuePair.LocalBuffer, offset: Int, id: UInt64, signaled: Bool
    }

    /// One signaled FLUSH in a batch of its own, after `write` when given, posted with
    /// `ibv_wr_complete`.
    private static func postFlush(on qp: UnsafeMutablePointer<ibv_qp_ex>, id: UInt64, remote: MemoryRegion.RemoteAccess,
                                  offset: Int, length: Int, after write: BatchedWrite? = nil) throws(Errno) {
        VerbsCalls.ibv_wr_start(qp)
        if let write {
            qp.pointee.wr_id = write.id
            qp.pointee.wr_flags = write.signaled ? UInt32(IBV_SEND_SIGNALED.rawValue) : 0
            VerbsCalls.ibv_wr_rdma_write(qp, rkey: remote.rkey, address: remote.address + UInt64(write.offset), local: write.local)
        }
        qp.pointee.wr_id = id
        qp.pointee.wr_flags = UInt32(IBV_SEND_SIGNALED.rawValue)
        do throws(Errno) {
            try VerbsCalls.ibv_wr_flush(qp, rkey: remote.rkey, address: remote.address + UInt64(offset), length: length,
                                        type: UInt8(DAXPIN_IBV_FLUSH_PERSISTENT), level: UInt8(DAXPIN_IBV_FLUSH_RANGE))
        } catch {
            VerbsCalls.ibv_wr_abort(qp)
            throw error
        }
        try VerbsCalls.ibv_wr_complete(qp)
    }

    /// The responder access of the queue pair as the kernel reports it (`ibv_query_qp`), or nil
    /// when the query fails.
    var responderAccess: RegistrationAccess? {
        guard let qp = id.pointee.qp else { return nil }
        var attributes = ibv_qp_attr()
        var initAttributes = ibv_qp_init_attr()
        guard (try? VerbsCalls.ibv_query_qp(qp, &attributes, Int32(bitPattern: IBV_QP_ACCESS_FLAGS.rawValue), &initAttributes)) != nil else {
            return nil
        }
        return RegistrationAccess(rawValue: Int32(bitPattern: attributes.qp_access_flags))
    }

    /// Moves the queue pair to ready-to-send as `rdma_accept` would (rdma_cm's attributes for
    /// INIT, RTR and RTS), with FLUSH added to its responder access in INIT, before the accept
    /// tells the peer the connection is up: the peer's first FLUSH is then admitted. Adding the
    /// access after the accept would race the peer's first FLUSH, which a responder without it
    /// answers with a remote invalid request error.
    func moveToReadyToSendAcceptingFlush(responderResources: UInt8, initiatorDepth: UInt8) throws(DaxPinError) {
        guard let qp = id.pointee.qp else { throw .connectionFailed(peer: peer, operation: "rdma_accept", reason: "no queue pair") }
        // IBV_ACCESS_FLUSH_GLOBAL | IBV_ACCESS_FLUSH_PERSISTENT (uverbs ABI values).
        let flushAccess: UInt32 = (1 << 8) | (1 << 9)
        let steps: [(ibv_qp_state, String)] = [(IBV_QPS_INIT, "INIT"), (IBV_QPS_RTR, "RTR"), (IBV_QPS_RTS, "RTS")]
        for (state, name) in steps {
            var attributes = ibv_qp_attr()
            var mask: Int32 = 0
            attributes.qp_state = state
            do throws(Errno) { try VerbsCalls.rdma_init_qp_attr(id, &attributes, &mask) } catch {
                throw .connectionFailed(peer: peer, operation: "rdma_init_qp_attr (\(name))", reason: errnoText(error.rawValue))
            }
            switch state {
            case IBV_QPS_INIT:
                attributes.qp_access_flags |= flushAccess
                mask |= Int32(bitPattern: IBV_QP_ACCESS_FLAGS.rawValue)
            case IBV_QPS_RTR:
                attributes.max_dest_rd_atomic = responderResources
                // librdmacm's workaround for an rdma_ucm bug: on InfiniBand ports these mask
                // bits (RoCE-only attributes) must not be passed.
                var port = ibv_port_attr()
                if (try? VerbsCalls.ibv_query_port(qp.pointee.context, id.pointee.port_num, &port)) != nil,
                   port.link_layer == UInt8(IBV_LINK_LAYER_INFINIBAND) {
                    mask &= Int32(bitPattern: UInt32.max ^ 0xe00000)
                }
            default: attributes.max_rd_atomic = initiatorDepth
            }
            do throws(Errno) { try VerbsCalls.ibv_modify_qp(qp, &attributes, mask) } catch {
                throw .featureUnavailable(feature: "RDMA FLUSH",
                                          reason: "\(device.name) refused a queue pair admitting FLUSH (ibv_modify_qp to \(name): \(error.daxName))")
            }
        }
    }
}
