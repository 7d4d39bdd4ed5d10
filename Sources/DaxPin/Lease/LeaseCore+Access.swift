import CLease
import Dispatch
import Glibc
import Logging
import Synchronization
import SystemPackage

// Byte access (outside the bookkeeping lock, drained before a teardown), unpin, stop hooks.
extension LeaseCore {
    /// Runs `body` on a region's resources as a byte access: revocation and `unpin` wait for it
    /// before they deregister or unmap, and no access starts once revocation has begun (it
    /// throws `.revoked`). The lease lock is not held while `body` runs, so `body` may call
    /// back into the lease. The lease's own failure is thrown; `body`'s is returned, so both
    /// stay typed.
    func access<R, E: Error>(_ id: Int, _ body: (RegionInfo) throws(E) -> R) throws(DaxPinError) -> Result<R, E> {
        let region = try state.withLock { (s: inout State) throws(DaxPinError) -> RegionInfo in
            guard !s.accessClosed else { throw .revoked(path: path) }
            guard let region = s.regions.info(of: id) else {
                throw .regionNotFound(path: path, region: id)
            }
            s.accessors += 1
            return region
        }
        defer { endAccess() }
        return Result { () throws(E) -> R in try body(region) }
    }

    func endAccess() {
        let waiters = state.withLock { s in
            s.accessors -= 1
            guard s.accessors == 0 else { return 0 }
            defer { s.accessDrainWaiters = 0 }
            return s.accessDrainWaiters
        }
        for _ in 0..<waiters { accessDrained.signal() }
    }

    /// Waits until no byte access runs (outside the lock: an access may need it). Once the
    /// teardown has closed access none can start, so none runs afterwards; before that (an
    /// `unpin`), the caller must check `accessors` again under the lock.
    func drainAccess() {
        while state.withLock({ s -> Bool in
            guard s.accessors > 0 else { return false }
            s.accessDrainWaiters += 1
            return true
        }) {
            accessDrained.wait()
        }
    }

    /// Tears down one region: deregister, then unmap.
    func unpin(_ id: Int) throws(DaxPinError) {
        Interleavings.reached(.unpinStarting)
        while true {
            drainAccess()
            let outcome: Result<Bool, DaxPinError> = state.withLock { s in
                guard case .held = s.phase else { return .failure(.revoked(path: path)) }
                guard s.regions.info(of: id) != nil else {
                    return .failure(.regionNotFound(path: path, region: id))
                }
                guard s.accessors == 0 else { return .success(false) }  // one started meanwhile
                var region = s.regions.remove(id: id)!
                if let code = region.deregister() {
                    s.trace.record(.deregistrationFailed(region: id, errno: code.rawValue))
                } else {
                    s.trace.record(.deregistered(region: id))
                }
                region.unmap(givingBackTo: &s.reservation)
                s.trace.record(.unmapped(region: id))
                return .success(true)
            }
            if try outcome.get() { break }
        }
        publishToRegistry()
    }

    /// Registers work to run after quiesce and before deregistration (for example moving
    /// queue pairs to the error state). Returns a token for `detach`.
    func attach(_ stop: @escaping @Sendable () -> Void) -> Int {
        state.withLock { s in
            s.nextHook += 1
            s.stopHooks[s.nextHook] = StopHook(stop)
            return s.nextHook
        }
    }

    func detach(_ token: Int) {
        _ = state.withLock { $0.stopHooks.removeValue(forKey: token) }
    }
}
