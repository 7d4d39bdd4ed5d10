import DaxPin

/// Two RC queue pairs on `device` connected to each other (rxe loops their traffic back): the
/// requester posts, the responder's memory is the target.
func loopbackPair(on device: RDMADevice) throws(DaxPinError) -> (requester: QueuePair, responder: QueuePair) {
    let requester = try QueuePair(device: device)
    let responder = try QueuePair(device: device)
    try responder.connect(to: requester.endpoint)
    try requester.connect(to: responder.endpoint)
    return (requester, responder)
}
