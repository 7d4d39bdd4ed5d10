import CIbverbs
import CRdmacm  // verbs enum constants resolve through it once any file imports librdmacm (as in QueuePair)
import SystemPackage

/// A one-sided RDMA WRITE or READ work request to `remote` + `offset`, without its
/// scatter/gather list (the caller points `sg_list` at memory that outlives the post).
private func oneSidedRequest(_ opcode: ibv_wr_opcode, id: UInt64, remote: MemoryRegion.RemoteAccess, offset: Int,
                             signaled: Bool) -> ibv_send_wr {
    var request = ibv_send_wr()
    request.wr_id = id
    request.opcode = opcode
    request.num_sge = 1
    request.send_flags = signaled ? IBV_SEND_SIGNALED.rawValue : 0
    // Wrapping: an address outside the region is the NIC's to refuse (a remote access
    // error completion), never a trap in the caller.
    request.wr.rdma.remote_addr = remote.address &+ UInt64(truncatingIfNeeded: offset)
    request.wr.rdma.rkey = remote.rkey
    return request
}

/// Posts one one-sided RDMA WRITE or READ of `local` to `remote` + `offset` on `qp`
/// (`ibv_post_send`), signaled unless `signaled` is false: the work request QueuePair and
/// RDMAConnection share. Throws what `ibv_post_send` failed with.
func postOneSided(on qp: UnsafeMutablePointer<ibv_qp>, _ opcode: ibv_wr_opcode, id: UInt64,
                  local: QueuePair.LocalBuffer, remote: MemoryRegion.RemoteAccess, offset: Int,
                  signaled: Bool = true) throws(Errno) {
    var sge = ibv_sge(addr: local.address, length: UInt32(local.length), lkey: local.localKey)
    var request = oneSidedRequest(opcode, id: id, remote: remote, offset: offset, signaled: signaled)
    var bad: UnsafeMutablePointer<ibv_send_wr>?
    let failed: Errno? = withUnsafeMutablePointer(to: &sge) { pointer in
        request.sg_list = pointer
        do throws(Errno) { try VerbsCalls.ibv_post_send(qp, &request, &bad); return nil } catch { return error }
    }
    if let failed { throw failed }
}

/// Posts an RDMA WRITE and, linked behind it in the same `ibv_post_send` (one doorbell), an
/// RDMA READ (always signaled) on `qp`. Throws what `ibv_post_send` failed with.
func postWriteThenRead(on qp: UnsafeMutablePointer<ibv_qp>, write: QueuePair.LocalBuffer, writeID: UInt64, writeSignaled: Bool,
                       read: QueuePair.LocalBuffer, readID: UInt64, remote: MemoryRegion.RemoteAccess,
                       writeOffset: Int, readOffset: Int) throws(Errno) {
    var sges = (ibv_sge(addr: write.address, length: UInt32(write.length), lkey: write.localKey),
                ibv_sge(addr: read.address, length: UInt32(read.length), lkey: read.localKey))
    var requests = (oneSidedRequest(IBV_WR_RDMA_WRITE, id: writeID, remote: remote, offset: writeOffset, signaled: writeSignaled),
                    oneSidedRequest(IBV_WR_RDMA_READ, id: readID, remote: remote, offset: readOffset, signaled: true))
    let failed: Errno? = withUnsafeMutablePointer(to: &sges) { sgePair in
        withUnsafeMutablePointer(to: &requests) { pair -> Errno? in
            let sge = UnsafeMutableRawPointer(sgePair).assumingMemoryBound(to: ibv_sge.self)
            let wr = UnsafeMutableRawPointer(pair).assumingMemoryBound(to: ibv_send_wr.self)
            wr[0].sg_list = sge
            wr[0].next = wr + 1
            wr[1].sg_list = sge + 1
            var bad: UnsafeMutablePointer<ibv_send_wr>?
            do throws(Errno) { try VerbsCalls.ibv_post_send(qp, wr, &bad); return nil } catch { return error }
        }
    }
    if let failed { throw failed }
}
