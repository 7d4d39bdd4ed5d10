import SystemPackage

/// Owns the kernel objects behind one pinned region: its registration, its mapping and, for a
/// staged region, its bounce buffer. They are released in dependency order: the registration
/// first (the NIC must stop using the pages before they go), then the mappings. Dropping an
/// `OwnedRegion` releases whatever is left in that same order (stored properties are
/// destroyed in declaration order).
struct OwnedRegion: ~Copyable, Sendable {
    let info: RegionInfo
    /// Nil once deregistered.
    private var registration: MemoryRegistration?
    /// Nil once unmapped.
    private var mapping: Mapping?
    /// The bounce buffer of a staged region.
    private var staging: Mapping?
    /// The errno of a failed deregistration.
    private(set) var deregistrationFailure: Int32?

    init(id: Int, offset: Int, length: Int, strategy: Strategy, registration: consuming MemoryRegistration,
         mapping: consuming Mapping, staging: consuming Mapping?, flushIsDurable: Bool) {
        info = RegionInfo(id: id, offset: offset, length: length, strategy: strategy, mapping: mapping.base,
                          mappedLength: mapping.length, registered: staging?.base ?? mapping.base,
                          registration: registration.registration, flushIsDurable: flushIsDurable,
                          device: registration.device)
        self.registration = .some(registration)
        self.mapping = .some(mapping)
        self.staging = staging
    }

    var id: Int { info.id }

    /// `ibv_dereg_mr`; its errno when it fails (kept in ``deregistrationFailure``). Nothing the
    /// second time.
    @discardableResult
    mutating func deregister() -> Errno? {
        guard let failure = registration.take()?.deregister() else { return nil }
        deregistrationFailure = failure.rawValue
        return failure
    }

    /// The trace step of the deregistration: done, or failed with its errno.
    var deregistrationStep: RevocationTrace.Step {
        deregistrationFailure.map { .deregistrationFailed(region: id, errno: $0) } ?? .deregistered(region: id)
    }

    /// Removes the mappings: the file mapping given back to `reservation` when it lies in it
    /// (else unmapped), the bounce buffer unmapped. Only after ``deregister()``.
    mutating func unmap(givingBackTo reservation: inout ReservationState) {
        precondition(registration == nil, "DaxPin: a region is unmapped only after it is deregistered")
        if let mapping = mapping.take() { reservation.giveBack(mapping) }
        staging.take()?.unmap()
    }

    /// Removes the mappings when the whole reservation is about to be unmapped: a mapping in it
    /// goes with it, any other is unmapped. Only after ``deregister()``.
    mutating func unmapWithReservation() {
        precondition(registration == nil, "DaxPin: a region is unmapped only after it is deregistered")
        if let mapping = mapping.take() {
            if mapping.isReserved { mapping.coveredByReservation() } else { mapping.unmap() }
        }
        staging.take()?.unmap()
    }
}
