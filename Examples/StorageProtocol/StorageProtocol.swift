/// The storage protocol shared by daxpin-server and daxpin-client (issue 4).
public enum StorageProtocolVersion { public static let current = 1 }
