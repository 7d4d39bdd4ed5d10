/// The kernel objects a revocation takes out of its lease, each released by one step, in
/// dependency order: deregister every region, unmap them, give back the lease, close the
/// descriptor. Dropping it (a step skipped) releases what is left: the regions first (each
/// deregisters before it unmaps), then the reservation, then the lease handle.
struct TeardownResources: ~Copyable, Sendable {
    var regions: RegionTable
    /// The reservation to unmap as a whole; nil when the lease keeps it (see ``ReservationState``).
    var reservation: AddressReservation?
    var lease: LeaseHandle?

    var hasReservation: Bool {
        switch reservation {
        case .some: true
        case .none: false
        }
    }

    /// Step 3: `ibv_dereg_mr` for each region, in pin order; a failure is kept by its region
    /// and the teardown goes on.
    mutating func deregister(_ steps: inout TeardownRecorder) {
        regions.forEach { $0.deregister() }
        steps.mark(.deregistrations)
    }

    /// Step 4 with the reservation in hand: bounce buffers and mappings outside the reservation
    /// one by one, then the reservation and every region in it with one `munmap`.
    mutating func unmapWithReservation(_ steps: inout TeardownRecorder) {
        regions.forEach { $0.unmapWithReservation() }
        reservation.take()?.unmap()
        steps.mark(.unmappings)
    }

    /// Step 4 when the lease keeps its reservation: each region's mapping is given back to it.
    mutating func unmap(givingBackTo kept: inout ReservationState, _ steps: inout TeardownRecorder) {
        regions.forEach { $0.unmap(givingBackTo: &kept) }
        steps.mark(.unmappings)
    }

    /// Step 5: `F_UNLCK`, and the watcher forgets the descriptor. Recorded as `leaseLost` when
    /// the kernel had dropped the lease already.
    mutating func unlock(_ steps: inout TeardownRecorder, by caller: Revoker) {
        guard var handle = lease.take() else { return }
        let (wasHeld, lost) = handle.unlock()
        let fd = handle.fd
        lease = consume handle
        guard wasHeld else { return }
        steps.record(lost ? .leaseLost : .leaseReleased)
        LeaseWatcher.shared.unwatch(fd, onWatcher: caller.isWatcher)
    }

    /// Step 6: closes the descriptor.
    mutating func close(_ steps: inout TeardownRecorder) {
        guard let lease = lease.take() else { return }
        lease.close()
        steps.record(.closed)
    }
}
