import Glibc

/// The kernel objects a revocation takes out of its lease, each released by one step, in
/// dependency order: (on a break) write staged regions back, deregister every region, unmap
/// them, give back the lease, close the descriptor. `revoke` runs every step, so nothing whose
/// order matters is left when it is dropped (each region's registration still unmaps only after
/// it deregisters, see ``MemoryRegistration``); `deinit` checks it in debug builds rather than
/// leave the order to the destruction of its members.
struct TeardownResources: ~Copyable, Sendable {
    var regions: RegionTable
    /// The reservation to unmap as a whole; nil when the lease keeps it (see ``ReservationState``).
    var reservation: AddressReservation?
    var lease: LeaseHandle?

    deinit {
        assert(!hasReservation && !holdsHandle, "DaxPin: a teardown skipped a step (the reservation or the lease is left)")
    }

    private var holdsHandle: Bool {
        switch lease {
        case .some: true
        case .none: false
        }
    }

    var hasReservation: Bool {
        switch reservation {
        case .some: true
        case .none: false
        }
    }

    /// Whether any region is staged (has a bounce buffer to write back).
    var hasStagedRegions: Bool {
        var staged = false
        regions.forEachRegion { if $0.info.strategy == .staged { staged = true } }
        return staged
    }

    /// Step 3, on a lease break: each staged region's bounce buffer back to the file through the
    /// lease's own descriptor, then one `fdatasync` (see ``LeaseOptions/writeBackStagedOnBreak``).
    /// Runs after the queue pairs stopped and byte access closed, so nothing changes the buffers
    /// meanwhile; `deadline` bounds it. Nothing for a lease without staged regions or not
    /// writable (a read-only pin's peers cannot write).
    mutating func writeBackStaged(deadline: Stamp, enabled: Bool, _ steps: inout TeardownRecorder) {
        guard hasStagedRegions, let fd = lease?.fd else { return }
        // Without the size, a write could grow a file another process shrank: write nothing then.
        let size: Int, skip: RevocationTrace.DropCause?
        do throws(Errno) {
            size = Int(try Syscalls.fstat(fd).st_size)
            skip = enabled ? nil : .writeBackOff
        } catch {
            size = Int.max
            skip = .writeFailed(errno: error.rawValue)
        }
        var written = false
        regions.forEach { region in
            region.writeBack(fd: fd, fileSize: size, deadline: deadline, skip: skip)
            if (region.writeBackOutcome?.written ?? 0) > 0 { written = true }
        }
        if written, let failed = Errno.of({ () throws(Errno) in try Syscalls.fdatasync(fd) }) {
            regions.forEach { $0.writeBackNotDurable(failed.rawValue) }
        }
        steps.mark(.writeBacks)
    }

    /// Step 4: `ibv_dereg_mr` for each region, in pin order; a failure is kept by its region
    /// and the teardown goes on.
    mutating func deregister(_ steps: inout TeardownRecorder) {
        regions.forEach { $0.deregister() }
        steps.mark(.deregistrations)
    }

    /// Step 5 with the reservation in hand: bounce buffers and mappings outside the reservation
    /// one by one, then the reservation and every region in it with one `munmap`.
    mutating func unmapWithReservation(_ steps: inout TeardownRecorder) {
        regions.forEach { $0.unmapWithReservation() }
        reservation.take()?.unmap()
        steps.mark(.unmappings)
    }

    /// Step 5 when the lease keeps its reservation: each region's mapping is given back to it.
    mutating func unmap(givingBackTo kept: inout ReservationState, _ steps: inout TeardownRecorder) {
        regions.forEach { $0.unmap(givingBackTo: &kept) }
        steps.mark(.unmappings)
    }

    /// Step 6: `F_UNLCK`, and the watcher forgets the descriptor. Recorded as `leaseLost` when
    /// the kernel had dropped the lease already.
    mutating func unlock(_ steps: inout TeardownRecorder, by caller: Revoker) {
        guard var handle = lease.take() else { return }
        let (wasHeld, lost) = handle.unlock()
        let fd = handle.fd
        lease = consume handle
        guard wasHeld else { return }
        steps.record(lost ? .leaseLost : .leaseReleased)
        LeaseWatcher.shared.unwatch(fd, by: caller)
    }

    /// Step 7: closes the descriptor.
    mutating func close(_ steps: inout TeardownRecorder) {
        guard let lease = lease.take() else { return }
        lease.close()
        steps.record(.closed)
    }
}
