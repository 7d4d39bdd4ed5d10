import DaxPin

/// Every memory registration on the machine, from rdma netlink: the device list
/// (`RDMA_NLDEV_CMD_GET`), then each device's MR table (`RDMA_NLDEV_CMD_RES_MR_GET`), the way
/// `rdma resource show mr` asks. The kernel lists MRs of every process (in this pid namespace)
/// to any user; only the keys need `CAP_NET_ADMIN`.
package enum RdmaMemoryRegionTable {
    /// The MRs of every device, in the kernel's order.
    package static func current() throws(VisibilityError) -> [RdmaMemoryRegionEntry] {
        var socket = try RdmaNetlinkSocket()
        let result: Result<[RdmaMemoryRegionEntry], VisibilityError>
        do throws(VisibilityError) {
            result = .success(try memoryRegions(through: &socket))
        } catch {
            result = .failure(error)
        }
        socket.close()
        return try result.get()
    }

    private static func memoryRegions(through socket: inout RdmaNetlinkSocket) throws(VisibilityError) -> [RdmaMemoryRegionEntry] {
        let devices = try decode(socket.dump(command: RdmaNetlink.getDevice), command: "RDMA_NLDEV_CMD_GET")
            .compactMap(RdmaResourceDecoder.device(in:))
        var entries: [RdmaMemoryRegionEntry] = []
        for device in devices {
            let answer = try socket.dump(command: RdmaNetlink.getMemoryRegions, deviceIndex: device.index)
            for message in try decode(answer, command: "RDMA_NLDEV_CMD_RES_MR_GET") {
                entries += RdmaResourceDecoder.memoryRegions(in: message, device: device.name)
            }
        }
        return entries
    }

    /// The data messages of a complete dump (pure: host tests feed captured bytes).
    package static func decode(_ dump: NetlinkDump, command: String) throws(VisibilityError) -> [NetlinkMessage] {
        var data: [NetlinkMessage] = []
        do throws(NetlinkDecodeError) {
            var done = false
            for datagram in dump.datagrams where !done {
                let replies = try NetlinkWire.dumpReplies(NetlinkWire.messages(in: datagram[...]), sequence: dump.sequence)
                data += replies.data
                done = replies.done
            }
            guard done else { throw .incomplete }
        } catch {
            throw .rdmaNetlinkAnswer(command: command, error)
        }
        return data
    }
}
