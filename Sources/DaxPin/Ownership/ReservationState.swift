import SystemPackage

/// The lease's address reservation (see ``AddressReservation``): not made yet, unavailable
/// (regions are then mapped one by one), or held, with the number of pins that have mapped into
/// it and not yet added their region (a teardown meanwhile must leave it to them).
enum ReservationState: ~Copyable, Sendable {
    case untried
    case unavailable
    case reserved(AddressReservation, pinsInFlight: Int)

    /// Maps a region over the reservation, reserving first at the lease's first pin; nil when the
    /// region must be mapped the ordinary way. On success the pin is in flight until it
    /// ``landed()`` or ``discard(_:regionsLeft:)``s its mapping.
    mutating func map(capacity: Int, alignment: Int, length: Int, protection: Int32, flags: Int32,
                      fd: Int32, offset: Int) -> Result<Mapping, Errno>? {
        switch consume self {
        case .untried:
            if let made = AddressReservation.make(capacity: capacity, alignment: alignment) {
                self = .reserved(made, pinsInFlight: 0)
                return map(capacity: capacity, alignment: alignment, length: length, protection: protection,
                           flags: flags, fd: fd, offset: offset)
            }
            self = .unavailable
            return nil
        case .unavailable:
            self = .unavailable
            return nil
        case .reserved(var reservation, let pins):
            let result = reservation.map(length: length, protection: protection, flags: flags, fd: fd, offset: offset)
            let mapped = switch result {
            case .success?: true
            default: false
            }
            self = .reserved(reservation, pinsInFlight: pins + (mapped ? 1 : 0))
            return result
        }
    }

    /// A pin in flight added its region.
    mutating func landed() {
        if case .reserved(let reservation, let pins) = consume self {
            self = .reserved(reservation, pinsInFlight: pins - 1)
        } else {
            self = .unavailable
        }
    }

    /// Undoes a failed (or revoked) pin's mapping: given back to the reservation, or, when
    /// nothing else lives in it, removed with the whole reservation (a later pin reserves again).
    mutating func discard(_ mapping: consuming Mapping, regionsLeft: Bool) {
        guard mapping.isReserved else { return mapping.unmap() }
        switch consume self {
        case .reserved(var reservation, let pins):
            if reservation.intact, !regionsLeft, pins == 1 {
                mapping.coveredByReservation()
                reservation.unmap()
                self = .untried
            } else {
                mapping.giveBack(to: &reservation)
                self = .reserved(reservation, pinsInFlight: pins - 1)
            }
        case .untried:
            mapping.unmap()
            self = .untried
        case .unavailable:
            mapping.unmap()
            self = .unavailable
        }
    }

    /// Gives a region's mapping back to the reservation (`unpin`, or a teardown that leaves the
    /// reservation in place); one outside it is unmapped.
    mutating func giveBack(_ mapping: consuming Mapping) {
        switch consume self {
        case .reserved(var reservation, let pins):
            if mapping.isReserved { mapping.giveBack(to: &reservation) } else { mapping.unmap() }
            self = .reserved(reservation, pinsInFlight: pins)
        case .untried:
            mapping.unmap()
            self = .untried
        case .unavailable:
            mapping.unmap()
            self = .unavailable
        }
    }

    /// The reservation, for a teardown to unmap as a whole: only when it is intact and no pin is
    /// in flight (its mapping lies in it too); it is then no longer the lease's.
    mutating func takeForTeardown() -> AddressReservation? {
        switch consume self {
        case .reserved(let reservation, let pins):
            if pins == 0, reservation.intact {
                self = .unavailable
                return reservation
            }
            self = .reserved(reservation, pinsInFlight: pins)
            return nil
        case .untried:
            self = .unavailable
            return nil
        case .unavailable:
            self = .unavailable
            return nil
        }
    }
}
