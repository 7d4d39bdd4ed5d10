@testable import DaxPin
import DaxPinServiceLifecycle
import Logging
import ServiceLifecycle
import Testing

extension DaxPin {
    /// `lease.revocation` (awaiting a revocation in Swift concurrency) and `LeaseService` (a lease
    /// held by a swift-service-lifecycle `ServiceGroup`).
    @Suite struct AsyncLifecycle {
        /// `operation`'s result, or nil when `timeout` passed first (`operation` is cancelled then).
        static func within<T: Sendable>(_ timeout: Duration, _ operation: @escaping @Sendable () async -> T) async -> T? {
            await withTaskGroup(of: T?.self) { group in
                group.addTask { await operation() }
                group.addTask {
                    try? await Task.sleep(for: timeout)
                    return nil
                }
                let first = await group.next() ?? nil
                group.cancelAll()
                return first
            }
        }

        static let teardown: [RevocationTrace.Step] = [.deregistered(region: 1), .unmapped(region: 1), .leaseReleased, .closed]

        static var quietLogger: Logger { Logger(label: "DaxPinTests.AsyncLifecycle") { _ in SwiftLogNoOpLogHandler() } }

        @Test("revocation returns the break's trace to a handle made before the break and to one made after it",
              arguments: [false, true])
        func revocationAfterBreak(awaitBefore: Bool) async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(on: try testDevice())
            let before = lease.revocation
            #expect(!before.isRevoked)
            // Either already waiting when the break comes, or only awaited afterwards.
            let waiter: Task<RevocationTrace??, Never>? = awaitBefore ? Task { await Self.within(.seconds(20)) { await before.trace() } } : nil
            if awaitBefore { try await Task.sleep(for: .milliseconds(50)) }
            let breaker = try Breaker.truncate(file.path)
            #expect(try #require(breaker.wait()).status == 0)
            let early = awaitBefore ? await waiter?.value : await Self.within(.seconds(20)) { await before.trace() }
            let waited = try #require(early, "the wait timed out")
            let trace = try #require(waited)
            #expect(trace.reason == .leaseBreak)
            #expect(trace.steps == [.breakNoticed] + Self.teardown)
            #expect(before.isRevoked)
            // A handle made after the break, and the `await lease.revocation()` spelling.
            let after = lease.revocation
            let late = await Self.within(.seconds(5)) { await after.trace() }
            #expect(late??.steps == trace.steps)
            let direct = await lease.revocation()
            #expect(direct?.reason == .leaseBreak)
            #expect(lease.release().steps == trace.steps)
        }

        @Test("a cancelled wait returns nil promptly and leaves the lease held; a release then ends a new wait")
        func cancelledWait() async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            let id = try lease.pin(on: try testDevice())
            let revocation = lease.revocation
            let waiter = Task { await revocation.trace() }
            try await Task.sleep(for: .milliseconds(50))
            let cancelledAt = ContinuousClock.now
            waiter.cancel()
            let gotNil = await Self.within(.seconds(5)) { await waiter.value == nil }
            #expect(gotNil == true, "the cancelled wait did not end with nil within 5 s")
            #expect(cancelledAt.duration(to: .now) < .seconds(1))
            // The lease is untouched, and the cancelled wait left no listener behind.
            #expect(lease.state == .held)
            #expect(try lease.withRegion(id) { $0.memoryRegion.remote.length } == 64 << 10)
            #expect(lease.core.state.withLock { $0.listeners.count } == 0)
            // A task cancelled before it waits gets nil too.
            let precancelled = Task {
                withUnsafeCurrentTask { $0?.cancel() }
                return await revocation.trace()
            }
            #expect(await Self.within(.seconds(5)) { await precancelled.value == nil } == true)
            // A release counts: a waiter gets its trace.
            let releasedWaiter = Task { await Self.within(.seconds(10)) { await revocation.trace() } }
            try await Task.sleep(for: .milliseconds(50))
            let released = lease.release()
            let seen = try #require(await releasedWaiter.value, "the wait timed out")
            #expect(seen?.reason == .released)
            #expect(seen?.steps == released.steps)
            #expect(released.steps == Self.teardown)
        }

        @Test("LeaseService: graceful shutdown of its ServiceGroup releases the lease in order and run() returns")
        func serviceReleasesOnGracefulShutdown() async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            let device = try testDevice()
            let service = try LeaseService(path: file.path, logger: Self.quietLogger) { lease in
                _ = try lease.pin(on: device)
            }
            #expect(service.trace == nil)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: service)], logger: Self.quietLogger))
            let running = Task { () -> (any Error)? in
                do { try await group.run() } catch { return error }
                return nil
            }
            try await Task.sleep(for: .milliseconds(100))
            #expect(service.withLease { $0.state } == .held)
            await group.triggerGracefulShutdown()
            let ended = await Self.within(.seconds(10)) { await running.value }
            let outcome = try #require(ended, "the group did not end within 10 s")
            #expect(outcome == nil, "the group threw \(String(describing: outcome))")
            let trace = try #require(service.trace)
            #expect(trace.reason == .released)
            #expect(trace.steps == Self.teardown)
            #expect(service.withLease { _ in 1 } == nil)
            // The descriptor is closed: the file can be leased again.
            try LayoutLease(path: file.path).release()
        }

        @Test("LeaseService: cancelling run() releases the lease in order")
        func serviceReleasesOnCancellation() async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(on: try testDevice())
            let service = LeaseService(lease: lease, logger: Self.quietLogger)
            let running = Task { try await service.run() }
            try await Task.sleep(for: .milliseconds(50))
            running.cancel()
            let ended = await Self.within(.seconds(10)) { await running.result }
            #expect(ended != nil, "run() did not return within 10 s")
            #expect(service.trace?.reason == .released)
            #expect(service.trace?.steps == Self.teardown)
        }

        @Test("LeaseService: a lease break ends run() with LeaseBrokenError, which the ServiceGroup rethrows")
        func serviceEndsOnBreak() async throws {
            let file = try ScratchFile(in: HostDirs.tmpfs, size: 64 << 10)
            var lease = try LayoutLease(path: file.path)
            _ = try lease.pin(on: try testDevice())
            let service = LeaseService(lease: lease, logger: Self.quietLogger)
            let group = ServiceGroup(configuration: ServiceGroupConfiguration(
                services: [.init(service: service)], logger: Self.quietLogger))
            let running = Task { () -> (any Error)? in
                do { try await group.run() } catch { return error }
                return nil
            }
            try await Task.sleep(for: .milliseconds(100))
            let breaker = try Breaker.truncate(file.path)
            #expect(try #require(breaker.wait()).status == 0)
            let ended = await Self.within(.seconds(10)) { await running.value }
            let outcome = try #require(ended, "the group did not end within 10 s")
            let broken = try #require(outcome as? LeaseBrokenError, "the group ended with \(String(describing: outcome))")
            #expect(broken.path == file.path)
            #expect(broken.trace.reason == .leaseBreak)
            #expect(broken.trace.steps == [.breakNoticed] + Self.teardown)
            #expect(service.trace?.steps == broken.trace.steps)
            #expect(file.size == 0)
        }
    }
}
