@testable import DaxPin
import Dispatch
import Glibc
import Synchronization
import Testing

extension DaxPin {
    /// Failures forced at the verbs seam while real rxe objects are made and used: each failing
    /// setup throws a typed error and leaves no descriptor behind, and the next one works.
    @Suite(.enabled(if: Testbed.isActive, Testbed.skipReason), .serialized) struct VerbsSeamOnRXE {
        init() { SyscallFaults.disarm() }

        @Test("a queue pair whose completion channel, CQ or QP cannot be made: a typed error, no descriptor left", arguments: [
            (Syscall.createCompletionChannel, "ibv_create_comp_channel"), (.createCompletionQueue, "ibv_create_cq"),
            (.createQueuePair, "ibv_create_qp"),
        ])
        func queuePairSetupFails(call: Syscall, operation: String) throws {
            defer { SyscallFaults.disarm() }
            let device = try Testbed.rdmaDevice()
            _ = try QueuePair(device: device)  // whatever the first one opens for good is open before counting
            let before = ResourceCount.now()
            SyscallFaults.arm(call, errno: ENOMEM)
            #expect(throws: DaxPinError.deviceFailure(device: device.name, operation: operation, errno: .noMemory)) {
                _ = try QueuePair(device: device)
            }
            #expect(SyscallFaults.isSpent(call))
            let after = ResourceCount.after(expecting: before)
            #expect(after == before, "leaked: \(after.fdDifference(from: before))")
            Testbed.ran(.refusalOnly)
        }

        @Test("a forced ibv_post_send or ibv_poll_cq failure on a queue pair is a typed error; the next WRITE and READ work")
        func queuePairPostAndPollFail() throws {
            defer { SyscallFaults.disarm() }
            let device = try Testbed.rdmaDevice()
            var target = LayoutLease.anonymous()
            let id = try target.pin(length: 4 * Peer.blockSize, on: device)
            let remote = try target.withRegion(id) { $0.memoryRegion.remote }
            let peer = try Peer(device: device)
            #expect(try peer.write(block: 0, pattern: 1, to: remote) == .success)
            SyscallFaults.arm(.postSend, errno: EIO)
            #expect(throws: DaxPinError.deviceFailure(device: device.name, operation: "ibv_post_send", errno: .ioError)) {
                _ = try peer.write(block: 1, pattern: 2, to: remote)
            }
            // The WRITE is posted, its completion is never read: the next request must not take it for its own.
            SyscallFaults.arm(.pollCompletionQueue, errno: EIO)
            #expect(throws: DaxPinError.deviceFailure(device: device.name, operation: "ibv_poll_cq", errno: .ioError)) {
                _ = try peer.write(block: 2, pattern: 3, to: remote)
            }
            #expect(try peer.write(block: 3, pattern: 4, to: remote) == .success)
            // Block 2's WRITE may read its source after block 3 refilled it: its bytes are not checked.
            for (block, pattern) in [(0, 1), (3, 4)] as [(Int, UInt8)] {
                #expect(try peer.read(block: block, from: remote) == [UInt8](repeating: pattern, count: Peer.blockSize), "block \(block)")
            }
            _ = target.release()
            Testbed.ran(.movedBytes)
        }

        @Test("rdma_create_qp refused on the client, then on the server: typed errors, no descriptor left, then a connection works")
        func connectionSetupFails() throws {
            defer { SyscallFaults.disarm() }
            let address = try Testbed.required("DAXPIN_RDMA_ADDR")
            let listener = try RDMAListener(address: address)
            try Self.exchange(listener)  // librdmacm keeps what its first connection opens
            let before = ResourceCount.now()

            SyscallFaults.arm(.rdmaCreateQueuePair, errno: ENOMEM)
            #expect {
                _ = try RDMAConnection.connect(to: address, port: listener.port, timeout: .seconds(10))
            } throws: { error in
                if case .deviceFailure(_, "rdma_create_qp", .noMemory)? = error as? DaxPinError { true } else { false }
            }
            #expect(SyscallFaults.isSpent(.rdmaCreateQueuePair))
            var after = ResourceCount.after(expecting: before)
            #expect(after == before, "client side leaked: \(after.fdDifference(from: before))")

            // The client's queue pair is made; the accepted connection's is refused, and rejected.
            SyscallFaults.arm(.rdmaCreateQueuePair, errno: ENOMEM, skip: 1)
            let client = Self.connectInBackground(address: address, port: listener.port)
            #expect(throws: DaxPinError.deviceFailure(device: listener.device.name, operation: "rdma_create_qp", errno: .noMemory)) {
                _ = try listener.accept(timeout: .seconds(10)) { _ in .accept(privateData: []) }
            }
            switch client.wait() {
            case .failure(.connectionRejected)?: break
            case let other: Issue.record("client: \(String(describing: other))")
            }
            #expect(SyscallFaults.isSpent(.rdmaCreateQueuePair))
            after = ResourceCount.after(expecting: before)
            #expect(after == before, "server side leaked: \(after.fdDifference(from: before))")

            SyscallFaults.disarm()
            try Self.exchange(listener)
            Testbed.ran(.movedBytes)
        }

        /// Connects to `listener` and exchanges one control message each way.
        static func exchange(_ listener: RDMAListener) throws {
            let client = connectInBackground(address: listener.address, port: listener.port)
            let server = try #require(try listener.accept(timeout: .seconds(10)) { _ in .accept(privateData: []) })
            let connection = try #require(client.wait()).get()
            try connection.send([1, 2, 3])
            #expect(try server.receive(timeout: .seconds(5)) == [1, 2, 3])
            try server.send([4])
            #expect(try connection.receive(timeout: .seconds(5)) == [4])
            connection.disconnect()
        }

        static func connectInBackground(address: String, port: UInt16) -> Background<Result<RDMAConnection, DaxPinError>> {
            Background {
                Result { () throws(DaxPinError) -> RDMAConnection in
                    try RDMAConnection.connect(to: address, port: port, timeout: .seconds(10))
                }
            }
        }
    }
}

/// A value computed on another thread (a client connecting while the test's thread accepts).
final class Background<Value: Sendable>: Sendable {
    private let value = Mutex<Value?>(nil)
    private let done = DispatchSemaphore(value: 0)

    init(_ body: @escaping @Sendable () -> Value) {
        DispatchQueue.global().async { [self] in
            let computed = body()
            value.withLock { $0 = computed }
            done.signal()
        }
    }

    /// The value, or nil when it is not there within `timeout`.
    func wait(timeout: Duration = .seconds(30)) -> Value? {
        guard done.wait(timeout: .now() + .milliseconds(Int(timeout.components.seconds * 1000))) == .success else { return nil }
        done.signal()  // later waits see it too
        return value.withLock { $0 }
    }
}
