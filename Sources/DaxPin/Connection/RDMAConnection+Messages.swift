import CIbverbs
import CRdmacm
import Glibc
import Synchronization

// Control messages: two-sided SEND/RECV through the connection's registered message pool.
extension RDMAConnection {

    private func slotAddress(_ slot: Int) -> UnsafeMutableRawPointer { buffer + slot * options.messageSize }

    func postReceive(slot: Int) throws(DaxPinError) {
        guard let qp = id.pointee.qp else { throw .disconnected(peer: peer) }
        var sge = ibv_sge(addr: UInt64(UInt(bitPattern: slotAddress(slot))), length: UInt32(options.messageSize),
                          lkey: bufferRegistration.localKey)
        var request = ibv_recv_wr()
        request.wr_id = UInt64(slot)
        request.num_sge = 1
        var bad: UnsafeMutablePointer<ibv_recv_wr>?
        let failed: Errno? = withUnsafeMutablePointer(to: &sge) { pointer in
            request.sg_list = pointer
            do throws(Errno) { try VerbsCalls.ibv_post_recv(qp, &request, &bad); return nil } catch { return error }
        }
        if let failed { throw .deviceFailure(device: device.name, operation: "ibv_post_recv", errno: failed) }
    }

    /// Sends one control message (SEND) and waits for its completion.
    /// - Throws: `.disconnected` when the queue pair is in the error state; `.deviceFailure`
    ///   with ETIMEDOUT when no completion arrives in `timeout`, with EMSGSIZE when `message`
    ///   exceeds ``Options/messageSize``.
    public func send(_ message: [UInt8], timeout: Duration = .seconds(5)) throws(DaxPinError) {
        guard message.count <= options.messageSize else {
            throw .deviceFailure(device: device.name, operation: "send \(message.count) bytes (limit \(options.messageSize))", errno: .messageTooLong)
        }
        let completion = try sends.postAndWait(timeout: timeout, failure: { errno in
            // The queue pair was destroyed or is in the error state: the connection is gone.
            errno == .invalidArgument || errno == .noMemory ? .disconnected(peer: peer)
                : .deviceFailure(device: device.name, operation: "ibv_post_send(SEND)", errno: errno)
        }) { (wrID) throws(Errno) in
            // Under the send lock: the one send slot is this request's until it completes.
            let slot = slotAddress(options.receiveSlots)
            message.withUnsafeBytes { slot.copyMemory(from: $0.baseAddress!, byteCount: $0.count) }
            var sge = ibv_sge(addr: UInt64(UInt(bitPattern: slot)), length: UInt32(message.count), lkey: bufferRegistration.localKey)
            var request = ibv_send_wr()
            request.wr_id = wrID
            request.opcode = IBV_WR_SEND
            request.num_sge = 1
            request.send_flags = IBV_SEND_SIGNALED.rawValue
            guard let qp = id.pointee.qp else { throw Errno.invalidArgument }
            var bad: UnsafeMutablePointer<ibv_send_wr>?
            let failed: Errno? = withUnsafeMutablePointer(to: &sge) { pointer in
                request.sg_list = pointer
                do throws(Errno) { try VerbsCalls.ibv_post_send(qp, &request, &bad); return nil } catch { return error }
            }
            if let failed { throw failed }
        }
        switch completion {
        case .success: return
        case .flushed, .retryExceeded: throw .disconnected(peer: peer)
        case let other: throw .deviceFailure(device: device.name, operation: "SEND (\(other))", errno: .ioError)
        }
    }

    /// The next control message, or nil when none arrives within `timeout`.
    /// - Throws: `.disconnected` when the receive queue was flushed (the queue pair is in error).
    public func receive(timeout: Duration) throws(DaxPinError) -> [UInt8]? {
        let result: Result<[UInt8]?, DaxPinError> = receiveLock.withLock { _ in
            do throws(DaxPinError) {
                guard let completion = try receiveCQ.poll(maximum: 1, timeout: timeout).first else { return .success(nil) }
                guard completion.status == IBV_WC_SUCCESS else {
                    markClosed()
                    return .failure(.disconnected(peer: peer))
                }
                let slot = Int(completion.wr_id)
                let message = Array(UnsafeRawBufferPointer(start: slotAddress(slot), count: Int(completion.byte_len)))
                try postReceive(slot: slot)
                return .success(message)
            } catch {
                return .failure(error)
            }
        }
        return try result.get()
    }
}
