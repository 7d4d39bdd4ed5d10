import SystemPackage

/// What `pin` would do, predicted without registering anything: the plan's candidates are
/// judged by what the running kernel is known to answer (fs-dax pins: EOPNOTSUPP; writable
/// page-cache pins from 6.5: refused). `daxpin probe` reports it; `pin` remains the proof.
public struct StrategyForecast: Sendable {
    /// The strategy `pin` would end up with, or nil when it would refuse.
    public let strategy: Strategy?
    /// Why: one line per candidate considered, best first.
    public let reasons: [String]
    /// The refusal `pin` would throw (same text as `DaxPinError.registrationRefused`), if any.
    public let refusal: RegistrationRefusal?

    /// Predicts the outcome of `pin` for `memory` on a device called `device` with `capabilities`.
    /// `kernel` is the running kernel's (major, minor).
    public init(path: String, memory: MemoryKind, access: Access, device: String, capabilities: DeviceCapabilities,
                policy: StrategyPolicy, kernel: (major: Int, minor: Int)) {
        let odp = capabilities.odpUsable(for: access)
        let plan = StrategyPlan(memory: memory, odp: odp, policy: policy)
        var reasons: [String] = []
        var attempts: [RegistrationRefusal.Attempt] = []
        var chosen: Strategy?
        for candidate in plan.candidates where chosen == nil {
            if let (code, why) = Self.knownRefusal(candidate, memory: memory, access: access, kernel: kernel) {
                reasons.append("\(candidate): refused (\(code.daxName)): \(why)")
                attempts.append(.init(strategy: candidate, errno: code, reason: why))
            } else {
                chosen = candidate
                reasons.append("\(candidate): \(Self.why(candidate, memory: memory))")
            }
        }
        for (strategy, reason) in plan.skipped {
            reasons.append("\(strategy): not tried: \(reason)")
            attempts.append(.init(strategy: strategy, errno: nil, reason: reason))
        }
        self.strategy = chosen
        self.reasons = reasons
        self.refusal = chosen == nil
            ? RegistrationRefusal(path: path, memory: memory, device: device, attempts: attempts,
                                  advice: StrategyPlan.advice(memory: memory, odp: capabilities.odp, policy: policy))
            : nil
    }

    private static func knownRefusal(_ strategy: Strategy, memory: MemoryKind, access: Access,
                                     kernel: (major: Int, minor: Int)) -> (Errno, String)? {
        switch (strategy, memory) {
        case (.pinned, .fsDAX):
            return (.notSupported, "the kernel does not allow long-term pins of fs-dax pages (a truncate could hand them to another file under the NIC)")
        case (.pinned, .pageCache) where access == .readWrite && (kernel.major, kernel.minor) >= (6, 5):
            return (.badAddress, "the kernel (6.5 and later) refuses writable long-term pins of page-cache files")
        case (.pinned, _) where access == .readOnly && (kernel.major, kernel.minor) < (6, 2) && memory.isLeasable:
            return (.badAddress, "kernels before 6.2 pin read-only registrations with FOLL_FORCE|FOLL_WRITE, which a read-only shared file mapping refuses")
        default:
            return nil
        }
    }

    private static func why(_ strategy: Strategy, memory: MemoryKind) -> String {
        switch strategy {
        case .pinned: "the kernel allows long-term pins of \(memory) memory (zero copy)"
        case .onDemandPaging: "the device faults pages in on demand, so nothing is pinned and the file system keeps its blocks (zero copy)"
        case .staged: "a bounce buffer is registered instead; the application copies with stageIn/writeBack (one copy each way)"
        }
    }
}
