import SystemPackage

/// What `pin` would do, predicted without registering anything: the plan's candidates are
/// judged by what the kernel is known to answer (``KernelBehaviour``: fs-dax pins EOPNOTSUPP,
/// writable page-cache pins refused from 6.5, ...). `daxpin probe` reports it; `pin` remains the proof.
package struct StrategyForecast: Sendable {
    /// The strategy `pin` would end up with, or nil when it would refuse.
    public let strategy: Strategy?
    /// Why: one line per candidate considered, best first.
    public let reasons: [String]
    /// The refusal `pin` would throw (same text as `DaxPinError.registrationRefused`), if any.
    public let refusal: RegistrationRefusal?

    /// Predicts the outcome of `pin` for `memory` on a device called `device` whose On-Demand
    /// Paging verdict is `onDemandPaging`
    /// (``RDMADevice/onDemandPaging(for:memory:directory:remoteAtomics:remoteFlush:)``), on a
    /// kernel that behaves as `kernel` says.
    public init(path: String, memory: MemoryKind, access: Access, device: String, onDemandPaging: OnDemandPagingVerdict,
                policy: StrategyPolicy, kernel: KernelBehaviour = .running) {
        let plan = StrategyPlan(memory: memory, onDemandPaging: onDemandPaging, policy: policy)
        var reasons: [String] = []
        var attempts: [RegistrationRefusal.Attempt] = []
        var chosen: Strategy?
        for candidate in plan.candidates where chosen == nil {
            if let (raw, why) = kernel.refusal(of: candidate, memory: memory, access: access) {
                let code = Errno(rawValue: raw)
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
                                  advice: StrategyPlan.advice(memory: memory, onDemandPaging: onDemandPaging, policy: policy))
            : nil
    }

    private static func why(_ strategy: Strategy, memory: MemoryKind) -> String {
        switch strategy {
        case .pinned: "the kernel allows long-term pins of \(memory) memory (zero copy)"
        case .onDemandPaging: "the device faults pages in on demand, so nothing is pinned and the file system keeps its blocks (zero copy)"
        case .staged: "a bounce buffer is registered instead; the application copies with stageIn/writeBack (one copy each way)"
        }
    }
}
