/// Owns a lease's regions, in the order they were pinned. A container of its own because the
/// standard collections hold only copyable values; dropping the table drops every region (each
/// deregisters, then unmaps, what it still holds).
// Sendable: it owns its storage alone and lives under the lease lock.
struct RegionTable: ~Copyable, @unchecked Sendable {
    private var storage: UnsafeMutablePointer<OwnedRegion>
    private var capacity: Int
    private(set) var count = 0

    /// Room for `capacity` regions; none allocated for 0 (a teardown leaves such a table behind).
    init(capacity: Int = 4) {
        self.capacity = capacity
        storage = capacity > 0 ? .allocate(capacity: capacity) : UnsafeMutablePointer(bitPattern: MemoryLayout<OwnedRegion>.alignment)!
    }

    var isEmpty: Bool { count == 0 }

    /// Adds a region (after the others).
    mutating func add(_ region: consuming OwnedRegion) {
        if count == capacity {
            let grown = UnsafeMutablePointer<OwnedRegion>.allocate(capacity: max(4, capacity * 2))
            grown.moveInitialize(from: storage, count: count)
            if capacity > 0 { storage.deallocate() }
            storage = grown
            capacity = max(4, capacity * 2)
        }
        (storage + count).initialize(to: region)
        count += 1
    }

    /// Takes the region `id` out of the table.
    mutating func remove(id: Int) -> OwnedRegion? {
        guard let index = index(of: id) else { return nil }
        let region = (storage + index).move()
        (storage + index).moveInitialize(from: storage + index + 1, count: count - index - 1)
        count -= 1
        return region
    }

    /// The facts of region `id`.
    func info(of id: Int) -> RegionInfo? {
        index(of: id).map { storage[$0].info }
    }

    /// Every region's facts, in pin order.
    var infos: [RegionInfo] {
        (0..<count).map { storage[$0].info }
    }

    /// Runs `body` on each region in pin order, in place.
    mutating func forEach(_ body: (inout OwnedRegion) -> Void) {
        for index in 0..<count { body(&storage[index]) }
    }

    /// Runs `body` on each region in pin order.
    func forEachRegion(_ body: (borrowing OwnedRegion) -> Void) {
        for index in 0..<count { body(storage[index]) }
    }

    /// The regions whose deregistration failed, with errno.
    var failedDeregistrations: [(region: Int, errno: Int32)] {
        var failed: [(region: Int, errno: Int32)] = []
        forEachRegion { region in
            if let code = region.deregistrationFailure { failed.append((region.id, code)) }
        }
        return failed
    }

    /// Takes every region out, leaving the table empty.
    mutating func takeAll() -> RegionTable {
        var taken = RegionTable(capacity: 0)
        swap(&self, &taken)
        return taken
    }

    private func index(of id: Int) -> Int? {
        (0..<count).first { storage[$0].id == id }
    }

    deinit {
        storage.deinitialize(count: count)
        if capacity > 0 { storage.deallocate() }
    }
}
