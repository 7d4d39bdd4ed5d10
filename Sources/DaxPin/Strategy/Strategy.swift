/// How a region is made reachable by the NIC.
public enum Strategy: Sendable, Hashable, CustomStringConvertible {
    /// The mapped pages are pinned and registered directly (zero copy).
    case pinned
    /// The mapping is registered with On-Demand Paging (`IBV_ACCESS_ON_DEMAND`) and prefetched
    /// with `ibv_advise_mr`: nothing is pinned long term, the NIC faults pages in (zero copy).
    case onDemandPaging
    /// An anonymous bounce buffer is registered instead of the file; the application moves
    /// bytes with `stageIn` and `writeBack` (one copy each way).
    case staged

    /// Human-readable text for messages and logs.
    public var description: String {
        switch self {
        case .pinned: "pinned"
        case .onDemandPaging: "on-demand paging"
        case .staged: "staged"
        }
    }
}

/// What the caller allows DaxPin to choose.
public enum StrategyPolicy: Sendable, Hashable {
    /// Pick from the memory kind and the NIC: pinned, else on-demand paging, else staged.
    case auto
    /// Like `auto` but never staged: refuse rather than copy.
    case zeroCopy
    /// Exactly this strategy, or a refusal.
    case only(Strategy)
}

/// The strategies to try, best first, for a memory kind, device capabilities and policy.
/// Pure, so the `daxpin probe` command and the tests share it with `LayoutLease.pin`.
package struct StrategyPlan: Sendable, Equatable {
    /// Strategies to try in order; the first that the kernel accepts wins.
    public let candidates: [Strategy]
    /// Strategies ruled out without asking the kernel, with the reason.
    public let skipped: [(strategy: Strategy, reason: String)]

    /// Plans are equal when they try and skip the same strategies (reasons are prose).
    public static func == (a: StrategyPlan, b: StrategyPlan) -> Bool {
        a.candidates == b.candidates && a.skipped.map(\.strategy) == b.skipped.map(\.strategy)
    }

    /// Builds the plan for a device whose On-Demand Paging is `odp` true (verified) or false
    /// (not offered).
    public init(memory: MemoryKind, odp: Bool, policy: StrategyPolicy) {
        self.init(memory: memory, onDemandPaging: odp ? .verified : .notOffered, policy: policy)
    }

    /// Whether the plan for `memory` and `policy` could use On-Demand Paging, that is whether
    /// the device's ODP verdict matters (so the check runs only when it does).
    public static func considersOnDemandPaging(memory: MemoryKind, policy: StrategyPolicy) -> Bool {
        switch (memory, policy) {
        case (_, .only(let strategy)): strategy == .onDemandPaging
        case (.fsDAX, _), (.pageCache, _): true
        default: false
        }
    }

    /// Builds the plan. `onDemandPaging` is the device's verdict for the operations the access
    /// needs on RC queue pairs, on this kind of memory
    /// (``RDMADevice/onDemandPaging(for:memory:directory:remoteAtomics:remoteFlush:)``): only a
    /// verified ODP is used.
    public init(memory: MemoryKind, onDemandPaging: OnDemandPagingVerdict, policy: StrategyPolicy) {
        let odp = onDemandPaging.isUsable
        var preferred: [Strategy]
        switch memory {
        case .anonymous, .deviceDAX, .sharedMemory:
            preferred = [.pinned, .staged]
        case .fsDAX:
            // The kernel refuses long-term pins of fs-dax pages; asking anyway puts its
            // answer in the refusal, and a kernel with layout leases may accept.
            preferred = [.pinned, .onDemandPaging, .staged]
        case .pageCache:
            // Kernels from 6.5 refuse writable long-term pins of page-cache files.
            preferred = [.pinned, .onDemandPaging, .staged]
        }
        var skipped: [(Strategy, String)] = []
        if let reason = onDemandPaging.skipReason, preferred.contains(.onDemandPaging) {
            preferred.removeAll { $0 == .onDemandPaging }
            skipped.append((.onDemandPaging, reason))
        }
        if odp, case .fsDAX = memory {
            // With ODP nothing is pinned, so the file system keeps control of its blocks.
            preferred.removeAll { $0 == .pinned || $0 == .onDemandPaging }
            preferred.insert(.onDemandPaging, at: 0)
        }
        switch policy {
        case .auto:
            break
        case .zeroCopy:
            if preferred.contains(.staged) {
                preferred.removeAll { $0 == .staged }
                skipped.append((.staged, "the caller requires zero copy"))
            }
        case .only(let strategy):
            for other in preferred where other != strategy {
                skipped.append((other, "the caller asked for \(strategy) only"))
            }
            preferred = [strategy]
            if strategy == .onDemandPaging, let reason = onDemandPaging.skipReason {
                preferred = []
                skipped.removeAll { $0.0 == .onDemandPaging }
                skipped.append((.onDemandPaging, reason))
            }
        }
        self.candidates = preferred
        self.skipped = skipped
    }

    /// What a user can do when every candidate failed on this memory.
    static func advice(memory: MemoryKind, onDemandPaging: OnDemandPagingVerdict, policy: StrategyPolicy) -> [String] {
        var advice: [String] = []
        switch memory {
        case .fsDAX:
            advice.append("export a device-dax namespace (/dev/daxX.Y, `ndctl create-namespace -m devdax`), which can be pinned")
            switch onDemandPaging {
            case .verified: break
            case .notOffered: advice.append("use a NIC with On-Demand Paging (mlx5 class hardware)")
            case .failed: advice.append("use a NIC whose On-Demand Paging moves data correctly (mlx5 class hardware; `daxpin probe` runs the check)")
            }
        case .pageCache:
            advice.append("place the file on tmpfs, or use a NIC with On-Demand Paging")
        default:
            advice.append("check RLIMIT_MEMLOCK (`ulimit -l`) and the device's max MR size")
        }
        if policy != .auto {
            advice.append("allow copies with policy .auto (staged bounce buffer)")
        }
        return advice
    }
}
