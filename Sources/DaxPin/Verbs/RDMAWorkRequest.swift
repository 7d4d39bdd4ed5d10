import CIbverbs

/// Posts one signaled one-sided RDMA WRITE or READ of `local` to `remote` + `offset` on `qp`
/// (`ibv_post_send`): the work request QueuePair and RDMAConnection share.
/// Returns `ibv_post_send`'s status (0 or an errno).
func postOneSided(on qp: UnsafeMutablePointer<ibv_qp>, _ opcode: ibv_wr_opcode, id: UInt64,
                  local: QueuePair.LocalBuffer, remote: MemoryRegion.RemoteAccess, offset: Int,
                  signaled: Bool = true) -> Int32 {
    var sge = ibv_sge(addr: local.address, length: UInt32(local.length), lkey: local.localKey)
    var request = ibv_send_wr()
    request.wr_id = id
    request.opcode = opcode
    request.num_sge = 1
    request.send_flags = signaled ? IBV_SEND_SIGNALED.rawValue : 0
    // Wrapping: an address outside the region is the NIC's to refuse (a remote access
    // error completion), never a trap in the caller.
    request.wr.rdma.remote_addr = remote.address &+ UInt64(truncatingIfNeeded: offset)
    request.wr.rdma.rkey = remote.rkey
    var bad: UnsafeMutablePointer<ibv_send_wr>?
    return withUnsafeMutablePointer(to: &sge) { pointer in
        request.sg_list = pointer
        return daxpin_ibv_post_send(qp, &request, &bad)
    }
}
