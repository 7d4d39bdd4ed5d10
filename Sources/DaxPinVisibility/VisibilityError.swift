import DaxPin
import Glibc

/// Why a source of `daxpin ls --all` could not be read. The listing goes on without it and
/// shows the text, which says what to do.
package enum VisibilityError: Error, Equatable, Sendable, CustomStringConvertible {
    /// The kernel has no rdma netlink (`socket(NETLINK_RDMA)` failed): no RDMA support loaded.
    case rdmaNetlinkUnavailable(errno: Int32)
    /// A netlink call failed.
    case rdmaNetlinkFailed(operation: String, errno: Int32)
    /// The kernel's answer could not be decoded, or it refused the request.
    case rdmaNetlinkAnswer(command: String, NetlinkDecodeError)
    /// The kernel did not finish answering within the time limit.
    case rdmaNetlinkTimedOut(command: String, milliseconds: Int)

    /// Human-readable text with what to do.
    package var description: String {
        switch self {
        case .rdmaNetlinkUnavailable(let code):
            "rdma netlink unavailable (\(errnoText(code))): this kernel has no RDMA support loaded, so no memory "
                + "registration can exist; load the driver (modprobe ib_uverbs and your NIC's module) to see them"
        case .rdmaNetlinkFailed(let operation, let code):
            "rdma netlink: \(operation) failed (\(errnoText(code)))"
        case .rdmaNetlinkAnswer(let command, .kernelError(let code)):
            "rdma netlink: the kernel refused \(command) (\(errnoText(code)))"
        case .rdmaNetlinkAnswer(let command, let problem):
            "rdma netlink: malformed answer to \(command) (\(problem)); please report it with `rdma -d resource show mr`"
        case .rdmaNetlinkTimedOut(let command, let milliseconds):
            "rdma netlink: no complete answer to \(command) within \(milliseconds) ms; try again"
        }
    }
}
