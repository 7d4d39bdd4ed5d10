import Glibc
import SystemPackage

/// Owns one memory registration (`ibv_mr`) and the memory it registers: the mapping of the
/// file, and a staged region's bounce buffer. ``deregister()`` releases the registration and
/// ``takeMapping()`` and ``takeStaging()`` hand the mappings over for unmapping, only after it. Dropped, its
/// `deinit` deregisters first, and only then are the mappings it still owns destroyed
/// (unmapped): a container's `deinit` runs before its members are destroyed, so the NIC lets go
/// of the pages before they go, whatever order the members are declared in. The device (its
/// protection domain) stays open while the registration lives.
struct MemoryRegistration: ~Copyable, Sendable {
    /// The registration's address, length and keys.
    let registration: Registration
    let device: RDMADevice
    /// Where the file is mapped (an address), and how long the mapping is.
    private let mappingAddress: UInt
    let mappedLength: Int
    /// The registered memory (an address): the bounce buffer of a staged region, else the file's mapping.
    private let registeredAddress: UInt
    /// False once ``deregister()`` ran.
    private(set) var isRegistered = true
    /// Nil once taken by ``takeMappings()``.
    private var mapping: Mapping?
    private var staging: Mapping?
    /// The registering process: a forked child's copy does not deregister (its uverbs
    /// descriptors were closed at fork, and the number may name another file by then).
    private let owner = Syscalls.processID()

    init(_ registration: Registration, on device: RDMADevice, mapping: consuming Mapping, staging: consuming Mapping?) {
        self.registration = registration
        self.device = device
        mappingAddress = UInt(bitPattern: mapping.base)
        mappedLength = mapping.length
        registeredAddress = UInt(bitPattern: staging?.base ?? mapping.base)
        self.mapping = .some(mapping)
        self.staging = staging
    }

    /// Where the file is mapped.
    var mappingBase: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: mappingAddress)! }
    /// The registered memory.
    var registeredBase: UnsafeMutableRawPointer { UnsafeMutableRawPointer(bitPattern: registeredAddress)! }

    /// Whether a bounce buffer is still owned.
    var hasStaging: Bool {
        switch staging {
        case .some: true
        case .none: false
        }
    }

    /// `ibv_dereg_mr`; its errno when it fails (the registration is given up either way).
    /// Nothing the second time.
    mutating func deregister() -> Errno? {
        guard isRegistered else { return nil }
        isRegistered = false
        return device.provider.deregister(registration)
    }

    /// The file's mapping, for the caller to unmap (or give back to the lease's reservation).
    /// Only after ``deregister()``.
    mutating func takeMapping() -> Mapping? {
        precondition(!isRegistered, "DaxPin: a region is unmapped only after it is deregistered")
        return mapping.take()
    }

    /// The bounce buffer, for the caller to unmap. Only after ``deregister()``.
    mutating func takeStaging() -> Mapping? {
        precondition(!isRegistered, "DaxPin: a region is unmapped only after it is deregistered")
        return staging.take()
    }

    deinit {
        if isRegistered, Syscalls.processID() == owner { _ = device.provider.deregister(registration) }
        // The mappings, members, are destroyed after this body: unmapped after the deregistration.
    }
}
