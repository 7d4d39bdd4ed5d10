import DaxPin
import Logging
import ServiceLifecycle
import Synchronization

/// A swift-service-lifecycle `Service` that holds a `LayoutLease` (and the regions
/// pinned under it) while it runs, and releases it in DaxPin's dependency order when the
/// service ends.
///
/// ``run()`` waits until one of:
/// - **graceful shutdown** (the `ServiceGroup` got a shutdown signal, or
///   `triggerGracefulShutdown()`), or cancellation of the service's task: it releases the lease
///   (queue pairs stopped, MRs deregistered, regions unmapped, `F_UNLCK`, close), logs the
///   trace, keeps it in ``trace`` and returns normally;
/// - **a lease break** (another process truncated, punched a hole in or opened the file):
///   DaxPin has already revoked every region in the same order (the quiesce handler, if any,
///   ran first); `run()` keeps the trace in ``trace`` and throws ``LeaseBrokenError``. It
///   throws whenever the lease ended by a break, even if a shutdown began while the break was
///   being handled.
///
/// With the default `ServiceGroupConfiguration.ServiceConfiguration`
/// (`failureTerminationBehavior: .cancelGroup`), a break therefore cancels the other services
/// of the group and `ServiceGroup.run()` throws the ``LeaseBrokenError``: the pinned memory is
/// gone, so whatever served it must stop. Configure `failureTerminationBehavior:
/// .gracefullyShutdownGroup` to shut the others down gracefully instead (`run()` of the group
/// still throws the error at the end), or `.ignore` to keep them running without the lease.
///
/// A normal return (after graceful shutdown) follows the service's
/// `successTerminationBehavior` (by default `.cancelGroup`, harmless during a shutdown).
///
/// ```swift
/// let service = try LeaseService(path: "/dev/shm/data") { lease in
///     _ = try lease.pin(on: device)
/// }
/// let group = ServiceGroup(configuration: ServiceGroupConfiguration(
///     services: [.init(service: service)], gracefulShutdownSignals: [.sigterm, .sigint], logger: logger))
/// try await group.run()
/// print(service.trace!)   // deregistered, unmapped, lease released, closed
/// ```
///
/// `Sendable`: the lease lives behind a `Mutex`; reach it with ``withLease(_:)``.
public final class LeaseService: Service, Sendable {
    private struct State: ~Copyable {
        var lease: LayoutLease?
        var trace: RevocationTrace?
    }

    private let state: Mutex<State>
    private let logger: Logger

    /// The leased path (as `LayoutLease.path`).
    public let path: String

    /// A service that holds `lease` (already opened, with its regions pinned) until it ends.
    /// - Parameters:
    ///   - lease: The lease; the service owns it from here on.
    ///   - logger: Where the release or the break is logged.
    public init(lease: consuming sending LayoutLease, logger: Logger = Logger(label: "DaxPin.LeaseService")) {
        self.path = lease.path
        self.logger = logger
        self.state = Mutex(State(lease: lease))
    }

    /// Opens `path`, takes a lease for `access` and calls `setUp` to pin regions (or attach
    /// queue pairs) before the service runs.
    ///
    /// If `setUp` throws, the lease is released in order and the error is rethrown.
    /// - Parameters:
    ///   - path: The file (or device-dax instance) to lease.
    ///   - access: The access to lease it for.
    ///   - options: The lease's options (quiesce handler, budget, logger).
    ///   - logger: Where the service logs the release or the break.
    ///   - setUp: Pins regions on the new lease; by default nothing.
    /// - Throws: The `DaxPinError` of `LayoutLease(path:access:options:)`, or what `setUp` throws.
    public convenience init(path: String, access: Access = .readWrite, options: LeaseOptions = LeaseOptions(),
                            logger: Logger = Logger(label: "DaxPin.LeaseService"),
                            setUp: (inout LayoutLease) throws -> Void = { _ in }) throws {
        var lease = try LayoutLease(path: path, access: access, options: options)
        do {
            try setUp(&lease)
        } catch {
            lease.release()
            throw error
        }
        self.init(lease: lease, logger: logger)
    }

    /// The trace of the lease's teardown once it has ended (released by ``run()`` or revoked by
    /// a break); nil while the lease is held.
    public var trace: RevocationTrace? {
        state.withLock { s in
            if let trace = s.trace { return trace }
            switch s.lease {
            case .some(let lease):
                if case .revoked = lease.state { return lease.trace }
                return nil
            case .none:
                return nil
            }
        }
    }

    /// Lends the lease to `body` (to pin, unpin, reach regions, attach queue pairs) while the
    /// service holds it; returns nil without calling `body` once the lease has been released.
    ///
    /// `body` runs under the service's lock: keep it short, and do not call back into the
    /// service from it. A lease that a break revoked is still lent (its accesses throw
    /// `DaxPinError.revoked(path:)`) until ``run()`` has seen the break.
    /// Replacing the lease in `body` (assigning a new one) drops the old one, which ends
    /// ``run()`` as a release does.
    public func withLease<R: Sendable, E: Error>(_ body: (inout LayoutLease) throws(E) -> R) throws(E) -> R? {
        try state.withLock { (s) throws(E) -> R? in
            guard var lease = s.lease.take() else { return nil }
            let result: Result<R, E>
            do throws(E) {
                result = .success(try body(&lease))
            } catch {
                result = .failure(error)
            }
            s.lease = consume lease
            return try result.get()
        }
    }

    /// Holds the lease until graceful shutdown, cancellation or a lease break (see
    /// ``LeaseService``); on shutdown or cancellation releases it in order and returns.
    /// Returns at once if the lease was already released (a second call).
    /// - Throws: ``LeaseBrokenError`` when a lease break revoked the lease.
    public func run() async throws(LeaseBrokenError) {
        let revocation: LeaseRevocation? = state.withLock { s in
            switch s.lease {
            case .some(let lease): lease.revocation
            case .none: nil
            }
        }
        guard let revocation else { return }
        // nil: graceful shutdown or cancellation (the wait only listens; the lease is untouched).
        let revoked = await cancelWhenGracefulShutdown { await revocation.trace() }
        // Release in order, or (after a break) collect the break's finished teardown.
        guard let final = release() ?? revoked else { return }
        if final.reason == .leaseBreak {
            logger.error("lease broken: every region was revoked; the service ends",
                         metadata: ["path": "\(path)", "steps": "\(Self.steps(final))"])
            throw LeaseBrokenError(path: path, trace: final)
        }
        logger.info("lease released", metadata: ["path": "\(path)", "steps": "\(Self.steps(final))"])
    }

    /// The trace's steps on one line, for a log's metadata.
    private static func steps(_ trace: RevocationTrace) -> String {
        trace.steps.isEmpty ? "none" : trace.steps.map(\.description).joined(separator: ", ")
    }

    /// Takes the lease out and releases it; the trace (a break's, if the kernel broke it
    /// first), or nil when it was already taken.
    private func release() -> RevocationTrace? {
        let taken: LayoutLease? = state.withLock { $0.lease.take() }
        switch consume taken {
        case .some(let lease):
            let trace = lease.release()
            state.withLock { $0.trace = trace }
            return trace
        case .none:
            return state.withLock { $0.trace }
        }
    }
}

/// Thrown by ``LeaseService/run()`` when a lease break revoked the service's lease: another
/// process truncated, punched a hole in or opened the file, and DaxPin tore every region down
/// in order (the trace says how, and how long it took).
public struct LeaseBrokenError: Error, Sendable, CustomStringConvertible {
    /// The leased path.
    public let path: String
    /// The revocation's trace (`RevocationTrace.reason` is `.leaseBreak`).
    public let trace: RevocationTrace

    /// An error for the break of the lease on `path`, revoked as `trace` tells.
    public init(path: String, trace: RevocationTrace) {
        self.path = path
        self.trace = trace
    }

    /// Human-readable text for messages and logs.
    public var description: String { "the lease on \(path) was broken and revoked: \(trace)" }
}
