import Dispatch
import Logging

// Revocation in dependency order: quiesce, stop queue pairs, write back staged regions (on a
// break), deregister, unmap, F_UNLCK, close.
extension LeaseCore {
    /// Revokes everything under the lease in dependency order. Idempotent: a second caller
    /// gets the first teardown's trace, and the owner waits for that teardown to finish first
    /// (``Revoker`` says who waits, and when a break signal needs a held lease to start one).
    ///
    /// Nothing that wakes another thread runs before `F_UNLCK` unless a quiesce handler makes
    /// this a long revocation anyway: the events, the log line and the registry come after it,
    /// because the breaker is blocked until then.
    @discardableResult
    func revoke(reason: RevocationReason, by caller: Revoker = .owner) -> RevocationTrace {
        // A child forked without exec has copies of the parent's leases (their descriptors were
        // closed in it at fork): releasing or dropping one must not touch the parent's lease.
        // Breaks come only to the watcher thread, which a child does not have. (Not even the
        // lock is taken: another thread of the parent may have held it at the fork.)
        guard reason == .leaseBreak || !isForkedCopy else { return RevocationTrace() }
        var steps = TeardownRecorder()
        if reason == .leaseBreak { steps.record(.breakNoticed) }
        guard let firstEntry = begin(reason, caller) else {
            if caller.waitsForTeardownUnderWay { finished.wait() }
            return trace
        }
        Interleavings.reached(.revocationBegan(reason))
        quiesce(reason, &steps)                   // 1. the application's handler, within its budget
        stopQueuePairs(&steps)                    // 2. queue pairs to the error state
        var owned = closeAccess(reason)           //    no byte access runs, and none can start
        writeBackStaged(reason, &owned, &steps)   // 3. a break: staged bounce buffers to the file (pwrite)
        owned.deregister(&steps)                  // 4. ibv_dereg_mr, region by region
        unmap(&owned, &steps)                     // 5. munmap every region (the reservation in one call)
        Interleavings.reached(.unlocking)
        owned.unlock(&steps, by: caller)          // 6. F_UNLCK: the breaker may go on
        owned.close(&steps)                       // 7. close the descriptor
        return finish(reason, steps, regions: owned.regions, by: caller, firstEntry: firstEntry)
    }

    /// Blocks until the teardown has finished, up to `timeout`; the trace, or nil on timeout.
    func waitUntilRevoked(timeout: Duration) -> RevocationTrace? {
        guard finished.wait(timeout: timeout.dispatchDeadline) == .success else { return nil }
        return trace
    }

    /// Marks the lease `revoking` and returns where this teardown's steps will start in the
    /// trace (earlier ones are `unpin`'s); nil when it is not held (already revoked or revoking,
    /// or no kernel lease where one was required).
    private func begin(_ reason: RevocationReason, _ caller: Revoker) -> Int? {
        let requireLease = caller.requiresHeldLease
        return state.withLock { s in
            guard case .held = s.lifecycle, !requireLease || s.holdsLease else { return nil }
            advance(&s, to: .revoking(reason))
            s.trace.reason = reason
            return s.trace.entries.count
        }
    }

    /// Step 1, for a lease break with a quiesce handler: listeners and the registry hear of the
    /// break, then the handler runs (its own thread, bounded by its budget).
    private func quiesce(_ reason: RevocationReason, _ steps: inout TeardownRecorder) {
        guard reason == .leaseBreak, hasQuiesce else { return }
        let (listeners, handler) = state.withLock { s in
            steps.write(into: &s.trace, regions: RegionTable(capacity: 0))  // no region step yet
            s.history.append(.breakNoticed(path: path))
            return (Array(s.listeners.values), s.quiesce)
        }
        for listener in listeners { listener.yield(.breakNoticed(path: path)) }
        publishToRegistry()
        if let handler { runQuiesceHandler(handler) }
    }

    /// Step 2: runs the stop hooks of the queue pairs attached to the lease (including any
    /// attached while a quiesce handler ran).
    private func stopQueuePairs(_ steps: inout TeardownRecorder) {
        let hooks = state.withLock { $0.stopHooks }  // a reference, not a copy: no allocation
        guard !hooks.isEmpty else { return }
        for hook in hooks.values { hook.run() }
        steps.record(.queuePairsStopped(count: hooks.count))
    }

    /// Waits until no byte access runs and closes access, then takes the kernel objects out of
    /// the lease for the teardown. A reservation that a pin in flight still maps into stays
    /// behind (that pin removes it).
    private func closeAccess(_ reason: RevocationReason) -> TeardownResources {
        state.withLock { advance(&$0, to: .tearingDown(reason)) }
        drainAccess()
        Interleavings.reached(.accessClosed)
        return state.withLock { s in
            TeardownResources(regions: s.regions.takeAll(), reservation: s.reservation.takeForTeardown(),
                              lease: s.lease.take())
        }
    }

    /// Step 3, on a lease break of a writable lease: staged regions are written back (or counted
    /// as dropped, see ``LeaseOptions/writeBackStagedOnBreak``) by seven eighths of
    /// `lease-break-time` after the break was noticed: the quiesce handler has at most three
    /// quarters, and the steps after this one need little time. A release or a drop leaves
    /// writing back to the application.
    private func writeBackStaged(_ reason: RevocationReason, _ owned: inout TeardownResources,
                                 _ steps: inout TeardownRecorder) {
        guard reason == .leaseBreak, access == .readWrite, owned.hasStagedRegions, let noticed = steps.breakNoticedAt else { return }
        let deadline = noticed.adding(nanoseconds: (LeaseBreakTime.current * 7 / 8).wholeNanoseconds)
        owned.writeBackStaged(deadline: deadline, enabled: options.writeBackStagedOnBreak, &steps)
    }

    /// Step 5: with the reservation in hand, one `munmap` removes it and every region in it;
    /// otherwise each region is given back to the reservation the lease keeps.
    private func unmap(_ owned: inout TeardownResources, _ steps: inout TeardownRecorder) {
        if owned.hasReservation {
            owned.unmapWithReservation(&steps)
        } else {
            state.withLock { s in owned.unmap(givingBackTo: &s.reservation, &steps) }
        }
    }

    /// After `F_UNLCK`: writes the trace, tells the listeners, the registry, the log and the
    /// metrics (the teardown's steps are the trace's from `firstEntry`).
    private func finish(_ reason: RevocationReason, _ recorded: consuming TeardownRecorder, regions: borrowing RegionTable,
                        by caller: Revoker, firstEntry: Int) -> RevocationTrace {
        var steps = recorded
        let failures = regions.failedDeregistrations, lost = steps.contains(.leaseLost)
        let breakAnnounced = reason == .leaseBreak && hasQuiesce
        // The descriptor is closed: a new lease on the file may be taken from here on.
        if let claim { OwnLeases.shared.release(claim) }
        let (final, listeners, events): (RevocationTrace, [AsyncStream<LeaseEvent>.Continuation], [LeaseEvent]) = state.withLock { s in
            steps.write(into: &s.trace, regions: regions)
            advance(&s, to: lost ? .lost(reason) : .revoked(reason))
            // The stop hooks and the quiesce handler are done with; dropping them breaks a cycle
            // through one that captures something holding this lease.
            s.stopHooks.removeAll()
            s.quiesce = nil
            var events: [LeaseEvent] = []
            if reason == .leaseBreak, !breakAnnounced { events.append(.breakNoticed(path: self.path)) }
            events.append(.revoked(s.trace))
            s.history += events
            defer { s.listeners.removeAll() }
            return (s.trace, Array(s.listeners.values), events)
        }
        for listener in listeners {
            for event in events { listener.yield(event) }
            listener.finish()
        }
        PinRegistry.shared.withdraw(self)
        let (logger, path, memory) = (options.logger, path, memory)
        // The log line and the metrics go together: off the watcher thread, after F_UNLCK.
        RevocationLog.write(by: caller) {
            LeaseMetrics.revoked(memory: memory, reason: reason, teardown: final.entries[min(firstEntry, final.entries.count)...])
            if lost {
                logger.error("lease lost: the kernel dropped the lease (lease-break-time ran out) before DaxPin revoked; the file may have changed while the NIC could still write",
                             metadata: ["path": "\(path)"])
            }
            if final.stagedBytesDropped > 0 {
                logger.warning("lease break: staged bytes dropped; what peers wrote there is not in the file",
                               metadata: ["path": "\(path)", "dropped": "\(final.stagedBytesDropped)",
                                          "writtenBack": "\(final.stagedBytesWrittenBack)"])
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

    private func runQuiesceHandler(_ handler: @escaping @Sendable (QuiesceRequest) -> Void) {
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
}
