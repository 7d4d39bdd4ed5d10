@testable import DaxPin
import Foundation
import Testing

extension DaxPin {
    /// Errors read right wherever an application prints them: `localizedDescription` is the
    /// message, no message uses this repository's own words, and the closure APIs keep
    /// ``DaxPinError`` typed.
    @Suite struct ErrorText {
        static let samples: [DaxPinError] = [
            .fileNotFound(path: "/p"), .permissionDenied(path: "/p", errno: .permissionDenied),
            .unsupportedFileType(path: "/p", type: "FIFO"), .readOnlyFileSystem(path: "/p"),
            .invalidRange(path: "/p", offset: 0, length: 0, problem: .zeroLength),
            .fileInUse(path: "/p", lease: "write"), .fileInUse(path: "/p", lease: "existing"),
            .alreadyLeased(path: "/p", existingPath: "/q", existingAccess: .readWrite),
            .leaseUnavailable(path: "/p", errno: .invalidArgument), .noRDMADevice,
            .unknownDevice(name: "x", available: []), .deviceFailure(device: "rxe0", operation: "ibv_query_device", errno: .ioError),
            .registrationRefused(RegistrationRefusal(path: "/p", memory: .anonymous, device: "rxe0", attempts: [], advice: [])),
            .revoked(path: "/p"), .regionNotFound(path: "/p", region: 1), .wrongStrategy(operation: "stageIn", strategy: .pinned),
            .systemCall(operation: "open", path: "/p", errno: .ioError),
            .connectionFailed(peer: "h", operation: "rdma_connect", reason: "timed out"),
            .connectionRejected(peer: "h", reason: Array("no".utf8)), .disconnected(peer: "h"),
            .featureUnavailable(feature: "RDMA FLUSH", reason: "r"),
            RDMABuildFeatures(rdmaCoreRelease: 44, flush: false, atomicWrite: false).flushRefusal!,
            RDMABuildFeatures(rdmaCoreRelease: 44, flush: false, atomicWrite: false).atomicWriteRefusal!,
        ]

        @Test("localizedDescription is the message, not \"The operation could not be completed\"")
        func localizedDescription() {
            for error in Self.samples {
                #expect((error as any Error).localizedDescription == error.description)
                #expect(error.errorDescription == error.description)
            }
        }

        @Test("no message uses the repository's own words")
        func noRepositoryWords() {
            for error in Self.samples {
                let text = error.description.lowercased()
                for word in ["testbed", "scripts/", "issue", "tools/"] {
                    #expect(!text.contains(word), "\(word) in: \(error.description)")
                }
            }
            let noDevice = DaxPinError.noRDMADevice.description
            #expect(noDevice.contains("modprobe rdma_rxe") && noDevice.contains("rdma link add"))
        }

        @Test("fileInUse says what F_SETLEASE reported, without blaming another process")
        func fileInUseText() {
            let text = DaxPinError.fileInUse(path: "/p", lease: "write").description
            #expect(text.contains("EAGAIN from F_SETLEASE") && text.contains("in this one"))
        }

        struct Own: Error, Equatable {}

        @Test("withRegion, withBytes and withMutableBytes throw DaxPinError typed, or the body's own error")
        func closureErrorsStayTyped() throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 8192)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: try testDevice())
            // Each `catch` binds a DaxPinError: this compiles only if the error is typed.
            do {
                let length = try lease.withRegion(id) { region throws(DaxPinError) in
                    try region.withMutableBytes { $0.storeBytes(of: 7, toByteOffset: 0, as: UInt8.self) }
                    return try region.withBytes { $0.byteCount }
                }
                #expect(length == 8192)
            } catch {
                let typed: DaxPinError = error
                Issue.record("unexpected \(typed)")
            }
            do {
                _ = try lease.withRegion(PinnedRegion.ID(rawValue: 99)) { $0.length }
                Issue.record("expected regionNotFound")
            } catch {
                let typed: DaxPinError = error
                #expect(typed == .regionNotFound(path: file.path, region: 99))
            }
            // A body with its own error: that error comes out as it was thrown.
            #expect(throws: Own()) {
                try lease.withRegion(id) { (_) throws(Own) in throw Own() }
            }
            #expect(throws: Own()) {
                try lease.withRegion(id) { region in try region.withBytes { (_) throws(Own) in throw Own() } }
            }
            _ = lease.release()
        }
    }
}
