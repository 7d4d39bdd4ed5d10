import CMnl
@testable import DaxPin
@testable import DaxPinVisibility
import Glibc
import Testing

extension DaxPin {
    /// The pure readers behind `daxpin ls --all`, on synthetic kernel output laid out as the
    /// kernel writes it (the testbed checks the same readers against the live kernel).
    @Suite struct VisibilityParsing {
        typealias Writer = NetlinkTestWriter

        @Test("the decoder's rdma netlink numbers are those of <rdma/rdma_netlink.h>")
        func constantsMatchTheHeader() {
            #expect(Int(RdmaNetlink.nldevClient) == Int(RDMA_NL_NLDEV))
            #expect(UInt32(RdmaNetlink.getDevice) == RDMA_NLDEV_CMD_GET.rawValue)
            #expect(UInt32(RdmaNetlink.getMemoryRegions) == RDMA_NLDEV_CMD_RES_MR_GET.rawValue)
            #expect(daxpin_rdma_nldev_message_type(RdmaNetlink.getMemoryRegions) == RdmaNetlink.messageType(RdmaNetlink.getMemoryRegions))
            typealias A = RdmaNetlink.Attribute
            let pairs: [(UInt16, rdma_nldev_attr)] = [
                (A.deviceIndex, RDMA_NLDEV_ATTR_DEV_INDEX), (A.deviceName, RDMA_NLDEV_ATTR_DEV_NAME),
                (A.pid, RDMA_NLDEV_ATTR_RES_PID), (A.kernelName, RDMA_NLDEV_ATTR_RES_KERN_NAME),
                (A.memoryRegionTable, RDMA_NLDEV_ATTR_RES_MR), (A.memoryRegionEntry, RDMA_NLDEV_ATTR_RES_MR_ENTRY),
                (A.rkey, RDMA_NLDEV_ATTR_RES_RKEY), (A.lkey, RDMA_NLDEV_ATTR_RES_LKEY), (A.iova, RDMA_NLDEV_ATTR_RES_IOVA),
                (A.length, RDMA_NLDEV_ATTR_RES_MRLEN), (A.protectionDomainNumber, RDMA_NLDEV_ATTR_RES_PDN),
                (A.memoryRegionNumber, RDMA_NLDEV_ATTR_RES_MRN),
            ]
            for (ours, header) in pairs { #expect(UInt32(ours) == header.rawValue) }
            #expect(NetlinkWire.done == UInt16(NLMSG_DONE) && NetlinkWire.error == UInt16(NLMSG_ERROR))
            #expect(NetlinkWire.attributeTypeMask == ~UInt16(NLA_F_NESTED | NLA_F_NET_BYTEORDER))
        }

        @Test("an MR dump decodes: keys as root, none without, kernel MRs by owner, pads and unknown attributes skipped")
        func memoryRegionDump() throws {
            let regions = [
                Writer.MemoryRegion(rkey: 0x1a2b, lkey: 0x1a2b, length: 1 << 20, number: 3, protectionDomain: 2, pid: 4711),
                Writer.MemoryRegion(length: 4096, number: 4, protectionDomain: 2, pid: 4712),
                Writer.MemoryRegion(length: 8192, number: 5, kernelOwner: "ib_core"),
            ]
            let datagram = Writer.memoryRegionMessage(device: "rxe0", index: 1, sequence: 9, regions: regions)
                + Writer.done(sequence: 9)
            let data = try RdmaMemoryRegionTable.decode(NetlinkDump(sequence: 9, datagrams: [datagram]), command: "test")
            #expect(data.count == 1)
            let entries = RdmaResourceDecoder.memoryRegions(in: data[0], device: "fallback")
            #expect(entries == [
                RdmaMemoryRegionEntry(device: "rxe0", number: 3, length: 1 << 20, protectionDomain: 2, pid: 4711, rkey: 0x1a2b, lkey: 0x1a2b),
                RdmaMemoryRegionEntry(device: "rxe0", number: 4, length: 4096, protectionDomain: 2, pid: 4712),
                RdmaMemoryRegionEntry(device: "rxe0", number: 5, length: 8192, kernelOwner: "ib_core"),
            ])
            // Unknown attributes (driver details, newer kernels) and a wrong-sized u32 are skipped.
            let odd = Writer.attribute(41, Writer.u32(62, 7) + Writer.attribute(99, [1, 2, 3]) + Writer.attribute(28, [1, 2]))
            let message = NetlinkMessage(type: 0, flags: 0, sequence: 0,
                                         payload: (Writer.u32(1, 2) + Writer.attribute(40, odd))[...])
            #expect(RdmaResourceDecoder.memoryRegions(in: message, device: "mlx5_0") == [RdmaMemoryRegionEntry(device: "mlx5_0", number: 7)])
        }

        /// An MR dump captured from Linux 7.2.13 in the testbed (Tools/unleased-pin's 64 KiB MR on
        /// rxe0, read as root): the datagram with the MR, then the one with NLMSG_DONE.
        static let captured72: [[UInt8]] = [
            [
                0x60, 0x00, 0x00, 0x00, 0x0d, 0x14, 0x02, 0x00, 0x9d, 0x9f, 0x12, 0x6b, 0x6d, 0x01, 0x00, 0x00,
                0x08, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x09, 0x00, 0x02, 0x00, 0x72, 0x78, 0x65, 0x30,
                0x00, 0x00, 0x00, 0x00, 0x3c, 0x00, 0x28, 0x00, 0x38, 0x00, 0x29, 0x00, 0x08, 0x00, 0x2a, 0x00,
                0x76, 0x1b, 0x00, 0x00, 0x08, 0x00, 0x2b, 0x00, 0x76, 0x1b, 0x00, 0x00, 0x0c, 0x00, 0x2d, 0x00,
                0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x08, 0x00, 0x3e, 0x00, 0x19, 0x00, 0x00, 0x00,
                0x08, 0x00, 0x3c, 0x00, 0x10, 0x00, 0x00, 0x00, 0x08, 0x00, 0x1c, 0x00, 0xbe, 0x01, 0x00, 0x00,
            ],
            [
                0x14, 0x00, 0x00, 0x00, 0x03, 0x00, 0x02, 0x00, 0x9d, 0x9f, 0x12, 0x6b, 0x6d, 0x01, 0x00, 0x00,
                0x00, 0x00, 0x00, 0x00,
            ],
        ]

        @Test("an MR dump captured from Linux 7.2 decodes")
        func capturedDump() throws {
            let data = try RdmaMemoryRegionTable.decode(NetlinkDump(sequence: 0x6b12_9f9d, datagrams: Self.captured72), command: "test")
            #expect(data.flatMap { RdmaResourceDecoder.memoryRegions(in: $0, device: "?") } == [
                RdmaMemoryRegionEntry(device: "rxe0", number: 25, length: 65536, protectionDomain: 16, pid: 446, rkey: 0x1b76, lkey: 0x1b76),
            ])
            #expect(throws: VisibilityError.self, "a dump without its end") {
                try RdmaMemoryRegionTable.decode(NetlinkDump(sequence: 0x6b12_9f9d, datagrams: [Self.captured72[0]]), command: "test")
            }
        }

        @Test("a device dump decodes to index and name; a message without a name is no device")
        func deviceDump() throws {
            let datagram = Writer.deviceMessage(device: "rxe0", index: 1, sequence: 4)
                + Writer.deviceMessage(device: "rxe3", index: 4, sequence: 4) + Writer.done(sequence: 4)
            let data = try RdmaMemoryRegionTable.decode(NetlinkDump(sequence: 4, datagrams: [datagram]), command: "test")
            #expect(data.compactMap(RdmaResourceDecoder.device(in:)) == [.init(index: 1, name: "rxe0"), .init(index: 4, name: "rxe3")])
            #expect(RdmaResourceDecoder.device(in: NetlinkMessage(type: 0, flags: 0, sequence: 0, payload: Writer.u32(1, 1)[...])) == nil)
        }

        @Test("dump replies: other sequences ignored, errors and overruns thrown, bad lengths refused, truncated attributes end the walk")
        func dumpReplies() throws {
            let mixed = Writer.deviceMessage(device: "stale", index: 9, sequence: 1) + Writer.deviceMessage(device: "rxe0", index: 1, sequence: 2)
            let first = try NetlinkWire.dumpReplies(NetlinkWire.messages(in: mixed[...]), sequence: 2)
            #expect(first.data.count == 1 && !first.done)
            #expect(try NetlinkWire.dumpReplies(NetlinkWire.messages(in: Writer.done(sequence: 2)[...]), sequence: 2).done)
            #expect(throws: NetlinkDecodeError.kernelError(errno: EINVAL)) {
                try NetlinkWire.dumpReplies(NetlinkWire.messages(in: Writer.error(sequence: 2, errno: EINVAL)[...]), sequence: 2)
            }
            #expect(throws: NetlinkDecodeError.kernelError(errno: ENODEV)) {
                try NetlinkWire.dumpReplies(NetlinkWire.messages(in: Writer.done(sequence: 2, error: -ENODEV)[...]), sequence: 2)
            }
            #expect(throws: NetlinkDecodeError.overrun) {
                try NetlinkWire.dumpReplies(NetlinkWire.messages(in: Writer.message(type: 4, sequence: 2, payload: [])[...]), sequence: 2)
            }
            var corrupt = Writer.deviceMessage(device: "rxe0", index: 1, sequence: 2)
            corrupt[0] = 200  // longer than the datagram
            #expect(throws: NetlinkDecodeError.badLength(offset: 0, length: 200, available: corrupt.count)) {
                try NetlinkWire.messages(in: corrupt[...])
            }
            #expect(throws: NetlinkDecodeError.trailingBytes(count: 5)) {
                try NetlinkWire.messages(in: (Writer.done(sequence: 1) + [1, 2, 3, 4, 5])[...])
            }
            let truncated = Writer.u32(1, 7) + Writer.u32(2, 8).dropLast(2)
            #expect(NetlinkWire.attributes(in: truncated[...]).map(\.type) == [1])
            #expect(throws: VisibilityError.self) {
                try RdmaMemoryRegionTable.decode(NetlinkDump(sequence: 2, datagrams: [corrupt]), command: "test")
            }
        }

        @Test("VmPin and Tgid from /proc/<pid>/status")
        func processStatus() {
            let status = "Name:\tib_write_bw\nTgid:\t812\nPid:\t815\nVmLck:\t       0 kB\nVmPin:\t    8196 kB\nVmHWM:\t   12 kB\n"
            #expect(ProcessStatus.pinnedBytes(in: status) == 8196 * 1024)
            #expect(ProcessStatus.threadGroup(in: status) == 812)
            #expect(ProcessStatus.pinnedBytes(in: "Name:\tkthreadd\n") == nil)
            #expect(ProcessStatus.pinnedBytes(in: "VmPin:\t  12 MB\n") == nil)
        }

        @Test("maps lines: shared file mappings found, paths with spaces kept, anonymous shared memory left out")
        func mapsParsing() {
            let maps = """
            55d35c4dc000-55d35c4dd000 r--p 00000000 fd:01 1312                       /usr/bin/unleased pin
            7f6dd0afd000-7f6dd0b0d000 rw-s 00001000 00:1b 66042                      /dev/shm/vis test
            7f6dd0b0d000-7f6dd0b1d000 rw-s 00000000 00:01 7                          /dev/zero (deleted)
            7f6dd0b1d000-7f6dd0b2d000 rw-s 00000000 00:01 32768                      /SYSV00000000 (deleted)
            7f6dd0b2d000-7f6dd0b3d000 rw-s 00000000 00:05 812                        /dev/infiniband/uverbs0
            7f6dd0b3d000-7f6dd0b4d000 r--s 00000000 00:1b 66043                      /memfd:ring (deleted)
            7f6dd0c00000-7f6dd0c21000 rw-p 00000000 00:00 0 
            7ffd1a2f0000-7ffd1a311000 rw-p 00000000 00:00 0                          [stack]
            garbage line
            """
            let all = ProcessMapping.parse(maps)
            #expect(all.count == 8)
            let shared = all.filter(\.isSharedFileMapping)
            #expect(shared.map(\.path) == ["/dev/shm/vis test", "/dev/infiniband/uverbs0", "/memfd:ring (deleted)"])
            let tmpfs = shared[0]
            #expect(tmpfs.start == 0x7f6dd0afd000 && tmpfs.length == 0x10000 && tmpfs.offset == 0x1000)
            #expect(tmpfs.writable && tmpfs.shared && tmpfs.device == DeviceNumber(major: 0, minor: 27) && tmpfs.inode == 66042)
            #expect(!shared[2].writable)
            #expect(all[6].path == "" && all[7].path == "[stack]")
            #expect(tmpfs.overlaps(address: 0x7f6dd0b0c000, length: 4096) && !tmpfs.overlaps(address: 0x7f6dd0b0d000, length: 4096))
            #expect(tmpfs.overlaps(address: 0x7f6dd0afc000, length: .max), "a length that overflows still overlaps")
            let files = MappedFile.group(all + [ProcessMapping(start: 1 << 40, end: (1 << 40) + 4096, readable: true, writable: false,
                                                               shared: true, offset: 0, device: tmpfs.device, inode: 66042, path: tmpfs.path)])
            #expect(files.count == 3 && files[0].ranges.count == 2 && files[0].mappedBytes == 0x11000 && files[0].writable)
        }

        @Test("io_uring fdinfo: buffers with addresses, empty slots, a busy ring without addresses, not a ring")
        func fdinfoParsing() {
            let listed = "SqMask:\t0x3\nUserFiles:\t1\n    0: log\nUserBufs:\t2\n    0: 0x7f6dd0afd000/65536\n    1: 0x7f6dd0dcc000/16384\nPollList:\n"
            let ring = IoUringRegistration.parse(fdinfo: listed, fd: 3)
            #expect(ring == IoUringRegistration(fd: 3, bufferCount: 2, buffers: [
                .init(index: 0, address: 0x7f6dd0afd000, length: 65536), .init(index: 1, address: 0x7f6dd0dcc000, length: 16384)]))
            #expect(ring?.addressesListed == true && ring?.listedBytes == 81920)
            let sparse = IoUringRegistration.parse(fdinfo: "UserBufs:\t2\n    0: <none>\n    1: 0x1000/4096\nPollList:\n", fd: 5)
            #expect(sparse?.bufferCount == 1 && sparse?.buffers.count == 1 && sparse?.addressesListed == true)
            let busy = IoUringRegistration.parse(fdinfo: "UserBufs:\t4\nPollList:\n", fd: 6)
            #expect(busy?.bufferCount == 4 && busy?.buffers.isEmpty == true && busy?.addressesListed == false)
            #expect(IoUringRegistration.parse(fdinfo: "pos:\t0\nflags:\t02\n", fd: 7) == nil)
        }
    }
}
