import Glibc

/// What the kernel told us about one network interface.
public struct LinkDescription: Equatable, Sendable {
    public var index: Int32
    public var name: String
    /// IFF_* flags (IFF_UP is 0x1).
    public var flags: UInt32
    public var mtu: UInt32
    /// The bridge (or bond) this link is a port of.
    public var masterIndex: Int32?
    /// The link type from IFLA_INFO_KIND ("bridge", "veth"); nil for lo and physical devices.
    public var kind: String?

    public init(index: Int32, name: String, flags: UInt32, mtu: UInt32, masterIndex: Int32?, kind: String?) {
        self.index = index
        self.name = name
        self.flags = flags
        self.mtu = mtu
        self.masterIndex = masterIndex
        self.kind = kind
    }

    public var isUp: Bool { flags & NetlinkABI.iffUp != 0 }
}

/// rtnetlink requests over one `NetlinkSocket`, each waited for until the kernel acknowledges
/// or refuses it.
///
/// Everything happens in the network namespace the socket was opened in. The session is not
/// thread-safe (it numbers requests and reads replies in order); give each thread its own, or
/// guard one with a lock.
public final class NetlinkSession {
    private let socket: any NetlinkSocket
    private var lastSequence: UInt32

    /// - Parameter firstSequence: the sequence number of the first request; tests pin it so
    ///   request bytes are predictable.
    public init(socket: any NetlinkSocket, firstSequence: UInt32 = 1) {
        self.socket = socket
        self.lastSequence = firstSequence &- 1
    }

    // MARK: Links

    /// Looks a link up by name; nil when no such link exists in this namespace.
    public func link(named name: String) throws -> LinkDescription? {
        try checkName(name, operation: "look up link")
        var request = NetlinkRequest(type: NetlinkABI.getLink, flags: NetlinkABI.request | NetlinkABI.ack)
        request.appendLinkHeader()
        request.attribute(NetlinkABI.iflaIfname, string: name)
        do {
            let replies = try perform(request, "look up link \(name)")
            guard let reply = replies.first(where: { $0.type == NetlinkABI.newLink }) else {
                throw NetlinkError(operation: "look up link \(name)", errno: EBADMSG_VALUE, detail: "acknowledged without describing the link")
            }
            return try Self.parseLink(reply.payload, operation: "look up link \(name)")
        } catch let error as NetlinkError where error.errno == ENODEV {
            return nil
        }
    }

    /// Creates a Linux bridge. Fails with EEXIST when a link with that name exists.
    ///
    /// - Parameter macAddress: a fixed hardware address. Without one the kernel gives the
    ///   bridge a random address and then keeps re-deriving it from the lowest port address, so
    ///   the gateway's MAC changes whenever pods come and go and pods hold stale ARP entries.
    public func createBridge(name: String, macAddress: [UInt8]? = nil, mtu: UInt32? = nil) throws {
        try checkName(name, operation: "create bridge")
        var request = NetlinkRequest(type: NetlinkABI.newLink, flags: Self.createFlags)
        request.appendLinkHeader()
        request.attribute(NetlinkABI.iflaIfname, string: name)
        if let macAddress { request.attribute(NetlinkABI.iflaAddress, bytes: macAddress) }
        if let mtu { request.attribute(NetlinkABI.iflaMTU, uint32: mtu) }
        request.nested(NetlinkABI.iflaLinkinfo) {
            $0.attribute(NetlinkABI.iflaInfoKind, unterminated: "bridge")
        }
        try perform(request, "create bridge \(name)")
    }

    /// Creates a veth pair whose peer is born directly in another network namespace.
    ///
    /// Creating the peer in place (IFLA_NET_NS_FD inside the peer's description) costs about
    /// 2 ms on these machines; creating it here and moving it afterwards costs about 25 ms,
    /// because a move unregisters and re-registers the device.
    ///
    /// - Parameters:
    ///   - name: the link that stays in this namespace (e.g. `veth1a2b3c4d`).
    ///   - peerName: the link's name inside the other namespace (e.g. `eth0`).
    ///   - peerNamespaceFD: an open fd of the other namespace (`/run/netns/X`, `/proc/PID/ns/net`).
    ///   - masterIndex: a bridge to enslave the local end to in the same request.
    ///   - up: bring the local end up in the same request.
    ///
    /// The peer is always created down: asking for IFF_UP in the peer's ifinfomsg fails with
    /// ENOTCONN on the 6.18 kernel measured here (the peer is configured before it is joined to
    /// its partner, and a veth without a partner refuses to open). Raise it afterwards from a
    /// socket in its own namespace.
    public func createVethPair(name: String, peerName: String, peerNamespaceFD: Int32,
                               masterIndex: Int32? = nil, up: Bool = false, mtu: UInt32? = nil) throws {
        let operation = "create veth \(name) with peer \(peerName) in namespace fd \(peerNamespaceFD)"
        try checkName(name, operation: operation)
        try checkName(peerName, operation: operation)
        let upFlags: UInt32 = up ? NetlinkABI.iffUp : 0
        var request = NetlinkRequest(type: NetlinkABI.newLink, flags: Self.createFlags)
        request.appendLinkHeader(flags: upFlags, change: upFlags)
        // Attribute order follows iproute2 so a request can be compared with a captured
        // `ip link add NAME type veth peer name PEER netns X` byte for byte.
        request.attribute(NetlinkABI.iflaIfname, string: name)
        if let mtu { request.attribute(NetlinkABI.iflaMTU, uint32: mtu) }
        if let masterIndex { request.attribute(NetlinkABI.iflaMaster, int32: masterIndex) }
        request.nested(NetlinkABI.iflaLinkinfo) { info in
            info.attribute(NetlinkABI.iflaInfoKind, unterminated: "veth")
            info.nested(NetlinkABI.iflaInfoData) { data in
                data.nested(NetlinkABI.vethInfoPeer) { peer in
                    // The peer is described like a whole RTM_NEWLINK body: its own ifinfomsg,
                    // then its attributes.
                    peer.appendLinkHeader()
                    peer.attribute(NetlinkABI.iflaNetNsFD, uint32: UInt32(bitPattern: peerNamespaceFD))
                    peer.attribute(NetlinkABI.iflaIfname, string: peerName)
                    if let mtu { peer.attribute(NetlinkABI.iflaMTU, uint32: mtu) }
                }
            }
        }
        try perform(request, operation)
    }

    /// Brings a link up (IFF_UP) by name.
    public func setLinkUp(name: String) throws {
        try changeLink(name: name, flags: NetlinkABI.iffUp, change: NetlinkABI.iffUp, operation: "set link \(name) up")
    }

    /// Takes a link down by name.
    public func setLinkDown(name: String) throws {
        try changeLink(name: name, flags: 0, change: NetlinkABI.iffUp, operation: "set link \(name) down")
    }

    /// Makes the named link a port of the bridge with index `masterIndex` (0 detaches it).
    public func setMaster(name: String, masterIndex: Int32) throws {
        try changeLink(name: name, operation: "set master of \(name) to link \(masterIndex)") {
            $0.attribute(NetlinkABI.iflaMaster, int32: masterIndex)
        }
    }

    /// Sets the MTU of the named link.
    public func setMTU(name: String, mtu: UInt32) throws {
        try changeLink(name: name, operation: "set mtu of \(name) to \(mtu)") {
            $0.attribute(NetlinkABI.iflaMTU, uint32: mtu)
        }
    }

    /// Turns hairpin mode on or off for a bridge port, so a frame may leave through the port it
    /// came in on. A pod that calls its own Service is DNATed back to itself; without hairpin the
    /// bridge drops that reply path and the connection stalls.
    ///
    /// The request goes to the bridge (family AF_BRIDGE), with IFLA_BRPORT_MODE inside
    /// IFLA_PROTINFO. The kernel only reads IFLA_PROTINFO as port attributes when it carries
    /// NLA_F_NESTED; without the flag it takes the first byte as the legacy port *state*.
    public func setHairpin(index: Int32, enabled: Bool) throws {
        var request = NetlinkRequest(type: NetlinkABI.setLink, flags: NetlinkABI.request | NetlinkABI.ack)
        request.appendLinkHeader(family: NetlinkABI.afBridge, index: index)
        request.nested(NetlinkABI.iflaProtinfo | NetlinkABI.nested) {
            $0.attribute(NetlinkABI.iflaBrportMode, uint8: enabled ? 1 : 0)
        }
        try perform(request, "set hairpin \(enabled ? "on" : "off") on bridge port \(index)")
    }

    /// Deletes a link by name; a veth's peer goes with it. Returns false when it did not exist.
    @discardableResult
    public func deleteLink(name: String) throws -> Bool {
        try checkName(name, operation: "delete link")
        var request = NetlinkRequest(type: NetlinkABI.deleteLink, flags: NetlinkABI.request | NetlinkABI.ack)
        request.appendLinkHeader()
        request.attribute(NetlinkABI.iflaIfname, string: name)
        do {
            try perform(request, "delete link \(name)")
            return true
        } catch let error as NetlinkError where error.errno == ENODEV {
            return false
        }
    }

    // MARK: Addresses and routes

    /// Adds an IPv4 address (with its broadcast address) to a link. Fails with EEXIST when
    /// the link already has exactly this address.
    public func addAddress(_ address: IPv4.CIDR, index: Int32) throws {
        var request = NetlinkRequest(type: NetlinkABI.newAddress, flags: Self.createFlags)
        appendAddress(address, index: index, to: &request)
        if address.prefixLength < 31 {
            request.attribute(NetlinkABI.ifaBroadcast, bytes: address.broadcast.bytes)
        }
        try perform(request, "add address \(address) to link \(index)")
    }

    /// Removes an IPv4 address from a link. Returns false when the link did not have it.
    @discardableResult
    public func removeAddress(_ address: IPv4.CIDR, index: Int32) throws -> Bool {
        var request = NetlinkRequest(type: NetlinkABI.deleteAddress, flags: NetlinkABI.request | NetlinkABI.ack)
        appendAddress(address, index: index, to: &request)
        do {
            try perform(request, "remove address \(address) from link \(index)")
            return true
        } catch let error as NetlinkError where error.errno == EADDRNOTAVAIL {
            return false
        }
    }

    /// Adds a route to the main table: via `gateway` when given (universe scope), otherwise
    /// directly on the link (link scope). A nil destination is the default route.
    public func addRoute(destination: IPv4.CIDR?, gateway: IPv4.Address?, outputIndex: Int32?) throws {
        let target = destination?.networkCIDR
        var request = NetlinkRequest(type: NetlinkABI.newRoute, flags: Self.createFlags)
        request.appendRouteHeader(family: NetlinkABI.afInet, destinationLength: UInt8(target?.prefixLength ?? 0),
                                  table: NetlinkABI.tableMain, protocol: NetlinkABI.protocolBoot,
                                  scope: gateway == nil ? NetlinkABI.scopeLink : NetlinkABI.scopeUniverse,
                                  type: NetlinkABI.typeUnicast)
        if let target, target.prefixLength > 0 {
            request.attribute(NetlinkABI.rtaDestination, bytes: target.network.bytes)
        }
        if let gateway { request.attribute(NetlinkABI.rtaGateway, bytes: gateway.bytes) }
        if let outputIndex { request.attribute(NetlinkABI.rtaOutputInterface, int32: outputIndex) }
        let via = gateway.map { " via \($0)" } ?? ""
        let dev = outputIndex.map { " dev \($0)" } ?? ""
        try perform(request, "add route \(target?.description ?? "default")\(via)\(dev)")
    }

    /// Adds the default route via `gateway`, leaving through link `outputIndex`.
    public func addDefaultRoute(gateway: IPv4.Address, outputIndex: Int32) throws {
        try addRoute(destination: nil, gateway: gateway, outputIndex: outputIndex)
    }

    // MARK: Plumbing

    static let createFlags = NetlinkABI.request | NetlinkABI.ack | NetlinkABI.create | NetlinkABI.excl

    private func appendAddress(_ address: IPv4.CIDR, index: Int32, to request: inout NetlinkRequest) {
        request.appendAddressHeader(family: NetlinkABI.afInet, prefixLength: UInt8(address.prefixLength), index: index)
        // For a broadcast-capable link IFA_LOCAL and IFA_ADDRESS are the same; iproute2 sends both.
        request.attribute(NetlinkABI.ifaLocal, bytes: address.address.bytes)
        request.attribute(NetlinkABI.ifaAddress, bytes: address.address.bytes)
    }

    /// An RTM_NEWLINK without NLM_F_CREATE changes an existing link; naming it by IFLA_IFNAME
    /// (ifi_index 0) saves the lookup round trip.
    private func changeLink(name: String, flags: UInt32 = 0, change: UInt32 = 0, operation: String,
                            attributes: (inout NetlinkRequest) -> Void = { _ in }) throws {
        try checkName(name, operation: operation)
        var request = NetlinkRequest(type: NetlinkABI.newLink, flags: NetlinkABI.request | NetlinkABI.ack)
        request.appendLinkHeader(flags: flags, change: change)
        request.attribute(NetlinkABI.iflaIfname, string: name)
        attributes(&request)
        try perform(request, operation)
    }

    /// Interface names are at most 15 bytes (IFNAMSIZ 16 with the NUL); the kernel's own
    /// refusal ("Attribute failed policy validation") does not say which name was wrong.
    private func checkName(_ name: String, operation: String) throws {
        guard !name.isEmpty, name.utf8.count <= 15, !name.contains("/"), !name.contains(where: \.isWhitespace) else {
            throw NetlinkError(operation: "\(operation) \(name)", errno: EINVAL,
                               detail: "\"\(name)\" is not a valid interface name (1-15 bytes, no '/' or spaces)")
        }
    }

    /// Sends one request and reads until the kernel's acknowledgement (or refusal) for it,
    /// returning the data messages that came before it.
    @discardableResult
    func perform(_ request: NetlinkRequest, _ operation: @autoclosure () -> String) throws -> [NetlinkReply] {
        lastSequence &+= 1
        let sequence = lastSequence
        try socket.send(request.finished(sequence: sequence))
        var collected: [NetlinkReply] = []
        while true {
            let datagram = try socket.receive()
            for message in try NetlinkReply.parse(datagram: datagram) {
                // Replies to an earlier request that failed half-way can still be queued; they
                // carry an older sequence number and are not ours.
                guard message.sequence == sequence else { continue }
                switch message.type {
                case NetlinkABI.error:
                    let code = try Self.errorCode(message, operation: operation())
                    if code == 0 { return collected }
                    throw NetlinkError(operation: operation(), errno: code, detail: Self.extendedAckMessage(message))
                case NetlinkABI.done:
                    return collected
                case NetlinkABI.noop:
                    continue
                case NetlinkABI.overrun:
                    throw NetlinkError(operation: operation(), errno: ENOBUFS, detail: "the kernel dropped replies (overrun)")
                default:
                    collected.append(message)
                }
            }
        }
    }

    /// The positive errno in an NLMSG_ERROR (0 for an acknowledgement).
    static func errorCode(_ message: NetlinkReply, operation: String) throws -> Int32 {
        guard message.payload.count >= 4 else {
            throw NetlinkError(operation: operation, errno: EBADMSG_VALUE, detail: "truncated netlink error message")
        }
        return -Int32(bitPattern: readUInt32(message.payload, at: 0))
    }

    /// The kernel's human-readable reason (NLMSGERR_ATTR_MSG), when it sent one.
    static func extendedAckMessage(_ message: NetlinkReply) -> String? {
        guard message.flags & NetlinkABI.ackTLVs != 0 else { return nil }
        let echoedHeader = 4
        var start = echoedHeader + NetlinkABI.headerSize
        if message.flags & NetlinkABI.capped == 0, message.payload.count >= echoedHeader + NetlinkABI.headerSize {
            // Uncapped errors echo our whole request before the attributes.
            start = echoedHeader + NetlinkABI.aligned(Int(readUInt32(message.payload, at: echoedHeader)))
        }
        guard start <= message.payload.count else { return nil }
        return NetlinkAttributes(message.payload, from: start).string(NetlinkABI.errorAttributeMessage)
    }

    static func parseLink(_ payload: [UInt8], operation: String) throws -> LinkDescription {
        guard payload.count >= NetlinkABI.ifinfomsgSize else {
            throw NetlinkError(operation: operation, errno: EBADMSG_VALUE, detail: "link reply shorter than struct ifinfomsg")
        }
        let attributes = NetlinkAttributes(payload, from: NetlinkABI.ifinfomsgSize)
        let kind = attributes[NetlinkABI.iflaLinkinfo].flatMap {
            NetlinkAttributes($0, from: 0).string(NetlinkABI.iflaInfoKind)
        }
        return LinkDescription(
            index: Int32(bitPattern: readUInt32(payload, at: 4)),
            name: attributes.string(NetlinkABI.iflaIfname) ?? "",
            flags: readUInt32(payload, at: 8),
            mtu: attributes.uint32(NetlinkABI.iflaMTU) ?? 0,
            masterIndex: attributes.uint32(NetlinkABI.iflaMaster).map { Int32(bitPattern: $0) },
            kind: kind
        )
    }
}
