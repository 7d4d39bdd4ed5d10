import CLease
import Dispatch
import Glibc
import Logging
import Synchronization
import SystemPackage

// Revocation in dependency order: quiesce, stop queue pairs, deregister, unmap, F_UNLCK, close.
extension LeaseCore {
    /// Revokes everything under the lease in dependency order. Idempotent: a second caller
    /// waits for the first teardown to finish (unless `onWatcher`: the watcher thread must
    /// never block) and returns its trace.
    /// With `requireLease` (a break signal trusted without F_GETLEASE) it does nothing, and
    /// does not wait, unless a kernel lease is held.
    @discardableResult
    func revoke(reason: RevocationReason, onWatcher: Bool = false, requireLease: Bool = false) -> RevocationTrace {
        // Nothing that wakes another thread before the teardown (each wake-up competes with it
        // for a CPU): without a quiesce handler the events, the log line and the registry wait
        // until the breaker is released. A quiesce handler makes this a long revocation anyway.
        // Nor any allocation or other bookkeeping on the way to F_UNLCK: the breaker is blocked
        // until then. The steps' times are kept in locals and the trace is written after it
        // (a quiesce handler's steps go into the trace as they happen, so with one the break is
        // recorded first, as it happens).
        let noticedAt: Stamp? = reason == .leaseBreak ? .now() : nil
        let early = reason == .leaseBreak && hasQuiesce
        // The regions' bookkeeping is freed after F_UNLCK: the breaker waits for the lease, not for it.
        var retired: [RegionResources] = []
        // With nothing to run first (no quiesce handler, no queue pairs to stop) the teardown
        // starts under the lock that starts the revocation: from the signal to the first
        // ibv_dereg_mr the watcher takes one lock and runs as little code as it can (under the
        // emulated testbed every further page of code or data it touches costs microseconds).
        let start: RevocationStart = state.withLock { s in
            guard case .held = s.phase, !requireLease || s.heldType >= 0 else { return .notHeld }
            s.phase = .revoking(reason)
            s.trace.reason = reason
            if early, let noticedAt {
                Self.recordBreakNoticed(&s.trace, at: noticedAt)
                return .quiesceFirst(listeners: Array(s.listeners.values))
            }
            guard s.stopHooks.isEmpty, s.accessors == 0 else { return .stopFirst(hooks: Array(s.stopHooks.values)) }
            return .tornDown(Self.tearDown(&s, retiring: &retired))
        }
        var stopped: (count: Int, at: Stamp)?
        let teardown: Teardown
        switch start {
        case .notHeld:
            if !onWatcher, !requireLease { finished.wait() }
            return trace
        case .tornDown(let done):
            teardown = done
        case .stopFirst(let hooks):
            (stopped, teardown) = stopQueuePairsAndTearDown(hooks, retiring: &retired)
        case .quiesceFirst(let listeners):
            for listener in listeners { listener.yield(.breakNoticed(path: path)) }
            publishToRegistry()
            runQuiesceHandler()
            // Queue pairs attached while the handler ran are stopped too.
            let hooks = state.withLock { $0.stopHooks.isEmpty ? [] : Array($0.stopHooks.values) }
            (stopped, teardown) = stopQueuePairsAndTearDown(hooks, retiring: &retired)
        }
        var releasedAt: Stamp?
        var closedAt: Stamp?
        var leaseLost = false
        if fd >= 0 {
            if teardown.leased {
                // EAGAIN: no lease left to remove. The kernel dropped it (lease-break-time ran
                // out before this teardown) and let the breaker go on while the MRs were live.
                leaseLost = Syscalls.setLease(fd, Int32(DAXPIN_F_UNLCK)) != 0 && errno == EAGAIN
                releasedAt = .now()
                LeaseWatcher.shared.unwatch(fd, onWatcher: onWatcher)
            }
            Syscalls.close(fd)
            closedAt = .now()
        }
        return finishRevocation(reason: reason, early: early, onWatcher: onWatcher, retired: retired, times: TeardownTimes(
            noticed: noticedAt, stopped: stopped, deregistered: teardown.deregistered, unmapped: teardown.unmapped,
            released: releasedAt, closed: closedAt, failedDeregistrations: teardown.failed, leaseLost: leaseLost))
    }

    /// Runs the queue pairs' stop hooks (outside the lock), then tears down under it once no
    /// byte access runs. `stopped` is nil when there was no hook.
    private func stopQueuePairsAndTearDown(_ hooks: [@Sendable () -> Void], retiring retired: inout [RegionResources])
        -> (stopped: (count: Int, at: Stamp)?, teardown: Teardown) {
        var stopped: (count: Int, at: Stamp)?
        if !hooks.isEmpty {
            for stop in hooks { stop() }
            stopped = (hooks.count, .now())
        }
        drainAccess(closing: true)
        return (stopped, state.withLock { Self.tearDown(&$0, retiring: &retired) })
    }

    /// Records the break as the first step (the quiesce handler's steps follow as they happen).
    /// Not inlined: see `finishRevocation`.
    @inline(never)
    private static func recordBreakNoticed(_ trace: inout RevocationTrace, at noticed: Stamp) {
        trace.record(.breakNoticed, at: noticed.instant)
    }

    /// When each step of a teardown happened.
    private struct TeardownTimes {
        let noticed: Stamp?
        let stopped: (count: Int, at: Stamp)?
        let deregistered: Stamp
        let unmapped: Stamp
        let released: Stamp?
        let closed: Stamp?
        let failedDeregistrations: [(region: Int, errno: Int32)]
        /// F_UNLCK found no lease: the kernel had taken it back already.
        let leaseLost: Bool
    }

    /// After `F_UNLCK`: writes the trace, tells the listeners, the registry and the log, and
    /// frees the regions' bookkeeping. A function of its own, never inlined: the clock types
    /// the trace holds are resilient, and with them in `revoke`'s frame their metadata was looked
    /// up on entry, before the teardown.
    @inline(never)
    private func finishRevocation(reason: RevocationReason, early: Bool, onWatcher: Bool, retired: [RegionResources],
                                  times: TeardownTimes) -> RevocationTrace {
        // The trace, in the order of the steps (the quiesce handler's are in it already).
        let anchor = Stamp.Anchor.now()
        state.withLock { s in
            s.trace.reserve(forRegions: retired.count)
            if !early, let noticed = times.noticed { s.trace.record(.breakNoticed, at: anchor.instant(of: noticed)) }
            if let stopped = times.stopped { s.trace.record(.queuePairsStopped(count: stopped.count), at: anchor.instant(of: stopped.at)) }
            let deregistered = anchor.instant(of: times.deregistered), unmapped = anchor.instant(of: times.unmapped)
            for region in retired where !times.failedDeregistrations.contains(where: { $0.region == region.id }) {
                s.trace.record(.deregistered(region: region.id), at: deregistered)
            }
            for failure in times.failedDeregistrations {
                s.trace.record(.deregistrationFailed(region: failure.region, errno: failure.errno), at: deregistered)
            }
            for region in retired { s.trace.record(.unmapped(region: region.id), at: unmapped) }
            if let released = times.released { s.trace.record(times.leaseLost ? .leaseLost : .leaseReleased, at: anchor.instant(of: released)) }
            if let closed = times.closed { s.trace.record(.closed, at: anchor.instant(of: closed)) }
        }
        withExtendedLifetime(retired) {}
        let (final, listeners): (RevocationTrace, [AsyncStream<LeaseEvent>.Continuation]) = state.withLock { s in
            s.phase = .revoked(reason)
            isRevoked.store(true, ordering: .releasing)
            // The stop hooks have run; dropping them breaks a cycle through a hook that
            // captures something holding this lease.
            s.stopHooks.removeAll()
            defer { s.listeners.removeAll() }
            return (s.trace, Array(s.listeners.values))
        }
        for listener in listeners {
            if reason == .leaseBreak, !early { listener.yield(.breakNoticed(path: path)) }
            listener.yield(.revoked(final))
            listener.finish()
        }
        finished.leave()
        PinRegistry.shared.withdraw(self)
        let (logger, path) = (options.logger, path)
        let failures = times.failedDeregistrations, lost = times.leaseLost
        RevocationLog.write(offThread: onWatcher) {
            if lost {
                logger.error("lease lost: the kernel dropped the lease (lease-break-time ran out) before DaxPin revoked; the file may have changed while the NIC could still write",
                             metadata: ["path": "\(path)"])
            }
            for failure in failures {
                logger.error("ibv_dereg_mr failed during revocation; the region was unmapped and the lease released anyway",
                             metadata: ["path": "\(path)", "region": "\(failure.region)", "errno": "\(errnoText(failure.errno))"])
            }
            if reason == .leaseBreak {
                logger.notice("lease break: revoked", metadata: ["path": "\(path)", "duration": "\(final.duration)"])
            } else {
                logger.debug("revoked", metadata: ["path": "\(path)", "reason": "\(reason)", "steps": "\(final.steps.count)"])
            }
        }
        return final
    }

    /// Blocks until the teardown has finished, up to `timeout`; the trace, or nil on timeout.
    func waitUntilRevoked(timeout: Duration) -> RevocationTrace? {
        guard finished.wait(timeout: timeout.dispatchDeadline) == .success else { return nil }
        return trace
    }

    @inline(never)  // keeps its clock types out of revoke's frame (see finishRevocation)
    private func runQuiesceHandler() {
        guard let handler = options.quiesce else { return }
        let budget = options.effectiveQuiesceBudget
        let request = QuiesceRequest(path: path, deadline: .now + budget, budget: budget)
        state.withLock { $0.trace.record(.quiesceStarted) }
        let done = DispatchSemaphore(value: 0)
        // Its own thread, not a Dispatch worker: with the global pool full of the application's
        // work (it has as many threads as CPUs) the handler would wait out its budget unrun.
        let run: @Sendable () -> Void = {
            handler(request)
            done.signal()
        }
        if !DetachedThread.start(run) { DispatchQueue.global().async(execute: run) }
        if done.wait(timeout: budget.dispatchDeadline) == .success {
            state.withLock { $0.trace.record(.quiesceFinished) }
        } else {
            state.withLock { $0.trace.record(.quiesceOverran) }
            options.logger.warning("quiesce handler overran its budget; revoking anyway", metadata: ["path": "\(path)", "budget": "\(budget)"])
        }
    }

    /// How a revocation goes on once its lock has started it.
    private enum RevocationStart {
        /// Nothing held (already revoked or revoking, or no kernel lease where one was required).
        case notHeld
        /// The handler runs first (the break is recorded); these listeners hear of the break.
        case quiesceFirst(listeners: [AsyncStream<LeaseEvent>.Continuation])
        /// These queue-pair stop hooks run first.
        case stopFirst(hooks: [@Sendable () -> Void])
        /// Deregistered and unmapped already, under the same lock.
        case tornDown(Teardown)
    }

    /// When the regions were deregistered and unmapped, and whether a kernel lease is held.
    private struct Teardown {
        let leased: Bool
        let deregistered: Stamp
        let unmapped: Stamp
        /// Regions whose `ibv_dereg_mr` failed, with its errno.
        let failed: [(region: Int, errno: Int32)]
    }

    /// Closes access, deregisters every region, then unmaps them (under the lease lock); the
    /// regions move to `retired`, to be freed once the lease is released.
    private static func tearDown(_ s: inout State, retiring retired: inout [RegionResources]) -> Teardown {
        s.accessClosed = true
        var failed: [(region: Int, errno: Int32)] = []  // allocates only when a deregistration fails
        for region in s.regions {
            if let code = deregister(region) { failed.append((region.id, code.rawValue)) }
        }
        let deregistered = Stamp.now()
        unmapAll(&s)
        let unmapped = Stamp.now()
        swap(&retired, &s.regions)
        return Teardown(leased: s.heldType >= 0, deregistered: deregistered, unmapped: unmapped, failed: failed)
    }

    /// `ibv_dereg_mr`; its errno when it fails.
    static func deregister(_ region: RegionResources) -> Errno? {
        region.device.provider.deregister(region.registration)
    }

    /// Unmaps one region (`unpin`), its bounce buffer included.
    static func unmap(_ region: RegionResources, reservation: inout AddressReservation?) {
        unmapMapping(of: region, reservation: &reservation)
        region.unmapStagingBuffer()
    }

    /// Removes a region's mapping: one in the reservation is given back to it (never a hole).
    private static func unmapMapping(of region: RegionResources, reservation: inout AddressReservation?) {
        if var kept = reservation, kept.contains(region.mapping) {
            kept.giveBack(region.fileMapping)
            reservation = kept
        } else {
            region.fileMapping.unmap()
        }
    }

    /// Unmaps every region of a teardown: those in an intact reservation with it, in one
    /// `munmap`, unless a pin is in flight (its mapping lies in the reservation too: the regions
    /// are given back and that pin removes the reservation). Allocates nothing.
    private static func unmapAll(_ s: inout State) {
        var reservation = s.reservation
        if let whole = reservation, whole.intact, !s.pinInFlight {
            var inside = 0
            for region in s.regions {
                if whole.contains(region.mapping) {
                    inside += 1
                } else {
                    region.fileMapping.unmap()
                }
            }
            whole.unmapAll(regionsInside: inside)
            reservation = nil
        } else {
            for region in s.regions { unmapMapping(of: region, reservation: &reservation) }
        }
        for region in s.regions { region.unmapStagingBuffer() }
        s.reservation = reservation
    }
}
