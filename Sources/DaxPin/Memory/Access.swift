/// How the application and its RDMA peers may use pinned memory.
public enum Access: Sendable, Hashable, CustomStringConvertible {
    /// Peers read with RDMA READ; the file is opened read-only and gets a read lease.
    case readOnly
    /// Peers read and write; the file is opened read-write and gets a write lease.
    case readWrite

    /// Human-readable text for messages and logs.
    public var description: String { self == .readOnly ? "read-only" : "read-write" }
}
