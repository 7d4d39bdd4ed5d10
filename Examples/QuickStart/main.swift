// The README's usage example, built by CI so it always compiles.
// Run: swift run daxpin-quickstart /dev/shm/data   (needs an RDMA device, e.g. in Scripts/testbed)
import DaxPin

let path = CommandLine.arguments.dropFirst().first ?? "/dev/shm/daxpin-quickstart"
do {
    let device = try RDMADevice.openFirst()
    var lease = try LayoutLease(path: path, access: .readWrite, options: LeaseOptions { request in
        print("lease breaking: stop RDMA on \(request.path) before \(request.deadline)")
    })
    print("\(path): \(lease.memory), \(lease.kind)")
    let id = try lease.pin(offset: 0, length: 4096, on: device, policy: .auto)
    let keys = try lease.withRegion(id) { region in
        print("strategy \(region.strategy)")
        return region.memoryRegion.remote  // address, length, rkey: send these to the peer
    }
    print("peer may write \(keys.length) bytes at 0x\(String(keys.address, radix: 16)) with rkey 0x\(String(keys.rkey, radix: 16))")
    print(lease.release())  // deregister, unmap, unlock, close: in that order
} catch {
    print("daxpin-quickstart: \(error)")
}
