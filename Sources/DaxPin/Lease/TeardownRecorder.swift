/// Records a teardown's steps as they happen, as plain clock readings (see ``Stamp``), and
/// writes them into the lease's ``RevocationTrace`` afterwards: the steps up to `F_UNLCK` run
/// while the breaker waits, so they neither allocate nor touch the lease's lock or the trace's
/// clock types. A per-region step (deregistered, unmapped) is one mark with one reading for
/// all regions; the regions' own outcomes (a write-back's counts, a failed deregistration) are
/// read when the trace is written.
struct TeardownRecorder {
    /// What a mark stands for.
    enum Mark {
        case step(RevocationTrace.Step)
        /// Every staged region of the teardown was written back (or not: see `OwnedRegion`).
        case writeBacks
        /// Every region of the teardown was deregistered (or failed to be: see `OwnedRegion`).
        case deregistrations
        /// Every region of the teardown was unmapped.
        case unmappings
    }

    /// At most: break noticed, queue pairs stopped, write-backs, deregistrations, unmappings,
    /// released or lost, closed.
    private var marks: InlineArray<8, (mark: Mark, at: Stamp)?> = .init(repeating: nil)
    private var count = 0
    /// When the break was noticed (kept after the marks are written): the revocation's deadlines
    /// count from it.
    private(set) var breakNoticedAt: Stamp?

    /// Notes that `step` happened now.
    mutating func record(_ step: RevocationTrace.Step) {
        mark(.step(step))
        if step == .breakNoticed { breakNoticedAt = marks[count - 1]?.at }
    }

    /// Notes that every region's deregistration (or unmapping) is done now.
    mutating func mark(_ mark: Mark) {
        precondition(count < marks.count, "DaxPin: a teardown records at most \(marks.count) marks")
        marks[count] = (mark, .now())
        count += 1
    }

    /// Whether `step` was recorded (and not yet written).
    func contains(_ step: RevocationTrace.Step) -> Bool {
        (0..<count).contains { index in
            if case .step(let recorded)? = marks[index]?.mark { recorded == step } else { false }
        }
    }

    /// Appends the recorded steps to `trace`, in order (a region mark as one step per region of
    /// `regions`), and forgets them.
    @inline(never)  // keeps the clock's resilient types out of the callers' frames
    mutating func write(into trace: inout RevocationTrace, regions: borrowing RegionTable) {
        guard count > 0 else { return }
        let anchor = Stamp.Anchor.now()
        trace.reserve(additional: count + 5 * regions.count)
        for index in 0..<count {
            guard let (mark, stamp) = marks[index] else { continue }
            let at = anchor.instant(of: stamp)
            switch mark {
            case .step(let step): trace.record(step, at: at)
            case .writeBacks: regions.forEachRegion { $0.recordWriteBack(into: &trace, at: at) }
            case .deregistrations: regions.forEachRegion { trace.record($0.deregistrationStep, at: at) }
            case .unmappings: regions.forEachRegion { trace.record(.unmapped(region: $0.id), at: at) }
            }
            marks[index] = nil
        }
        count = 0
    }
}
