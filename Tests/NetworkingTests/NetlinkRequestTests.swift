import Testing
@testable import Networking

/// Our requests compared byte for byte with what iproute2 6.1 sends for the same command,
/// captured with `strace -e trace=sendmsg -xx` inside throwaway namespaces. Only the sequence
/// number is ignored. iproute2 looks the device up and sends its index where we send the name
/// (for link set/del); those requests are checked field by field instead.
@Suite("rtnetlink requests match iproute2")
struct NetlinkRequestTests {
    struct Case: CustomTestStringConvertible, Sendable {
        let command: String
        let expected: [UInt8]
        let build: @Sendable (NetlinkSession) throws -> Void
        var testDescription: String { command }
    }

    static let cases: [Case] = [
        Case(
            command: "ip link add vethabcd1234 type veth peer name eth0 netns X  (X opened as fd 4)",
            expected: capturedMessage(type: 0x10, flags: 0x605, body: #"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x11\x00\x03\x00\x76\x65\x74\x68\x61\x62\x63\x64\x31\x32\x33\x34\x00\x00\x00\x00\x38\x00\x12\x00\x08\x00\x01\x00\x76\x65\x74\x68\x2c\x00\x02\x00\x28\x00\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x08\x00\x1c\x00\x04\x00\x00\x00\x09\x00\x03\x00\x65\x74\x68\x30\x00\x00\x00\x00"#),
            build: { try $0.createVethPair(name: "vethabcd1234", peerName: "eth0", peerNamespaceFD: 4) }
        ),
        Case(
            command: "bridge link set dev <index 3> hairpin on",
            expected: capturedMessage(type: 0x13, flags: 0x005, body: #"\x07\x00\x00\x00\x03\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x0c\x00\x0c\x80\x05\x00\x04\x00\x01\x00\x00\x00"#),
            build: { try $0.setHairpin(index: 3, enabled: true) }
        ),
        Case(
            command: "ip link add cni0 type bridge",
            expected: capturedMessage(type: 0x10, flags: 0x605, body: #"\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x00\x09\x00\x03\x00\x63\x6e\x69\x30\x00\x00\x00\x00\x10\x00\x12\x00\x0a\x00\x01\x00\x62\x72\x69\x64\x67\x65\x00\x00"#),
            build: { try $0.createBridge(name: "cni0") }
        ),
        Case(
            command: "ip addr add 10.244.0.2/24 brd + dev <index 2>",
            expected: capturedMessage(type: 0x14, flags: 0x605, body: #"\x02\x18\x00\x00\x02\x00\x00\x00\x08\x00\x02\x00\x0a\xf4\x00\x02\x08\x00\x01\x00\x0a\xf4\x00\x02\x08\x00\x04\x00\x0a\xf4\x00\xff"#),
            build: { try $0.addAddress(#require(IPv4.CIDR("10.244.0.2/24")), index: 2) }
        ),
        Case(
            command: "ip route add default via 10.244.0.1 dev <index 2>",
            expected: capturedMessage(type: 0x18, flags: 0x605, body: #"\x02\x00\x00\x00\xfe\x03\x00\x01\x00\x00\x00\x00\x08\x00\x05\x00\x0a\xf4\x00\x01\x08\x00\x04\x00\x02\x00\x00\x00"#),
            build: { try $0.addDefaultRoute(gateway: IPv4.Address(10, 244, 0, 1), outputIndex: 2) }
        ),
    ]

    @Test(arguments: cases)
    func sameBytesAsIproute2(_ testCase: Case) throws {
        let socket = RecordingNetlinkSocket()
        try testCase.build(NetlinkSession(socket: socket))
        let sent = try #require(socket.sentRequests.first)
        #expect(socket.sentRequests.count == 1)
        #expect(hex(withoutSequence(sent)) == hex(testCase.expected))
    }

    @Test("the hairpin request marks IFLA_PROTINFO as nested and addresses the bridge family")
    func hairpinAttributeLayout() throws {
        let socket = RecordingNetlinkSocket()
        try NetlinkSession(socket: socket).setHairpin(index: 7, enabled: false)
        let request = DecodedRequest(try #require(socket.sentRequests.first))
        #expect(request.type == NetlinkABI.setLink)
        #expect(request.payload[0] == NetlinkABI.afBridge)
        #expect(request.linkIndex == 7)
        // Raw attribute header right after ifinfomsg: type 12 with NLA_F_NESTED (0x800c).
        #expect(readUInt16(request.payload, at: 18) == 0x800c)
        let protinfo = try #require(request.attributes[NetlinkABI.iflaProtinfo])
        #expect(NetlinkAttributes(protinfo, from: 0)[NetlinkABI.iflaBrportMode] == [0])
    }

    @Test("veth with master and up carries them in the same request; the peer is created down")
    func vethWithMasterAndUp() throws {
        let socket = RecordingNetlinkSocket()
        try NetlinkSession(socket: socket).createVethPair(name: "veth00000001", peerName: "eth0", peerNamespaceFD: 9,
                                                          masterIndex: 5, up: true, mtu: 1450)
        let request = DecodedRequest(try #require(socket.sentRequests.first))
        #expect(request.flags == NetlinkABI.request | NetlinkABI.ack | NetlinkABI.create | NetlinkABI.excl)
        #expect(request.linkFlags == 1)
        #expect(readUInt32(request.payload, at: 12) == 1)  // ifi_change
        #expect(request.attributes.uint32(NetlinkABI.iflaMaster) == 5)
        #expect(request.attributes.uint32(NetlinkABI.iflaMTU) == 1450)
        let info = NetlinkAttributes(try #require(request.attributes[NetlinkABI.iflaLinkinfo]), from: 0)
        #expect(info.string(NetlinkABI.iflaInfoKind) == "veth")
        let data = NetlinkAttributes(try #require(info[NetlinkABI.iflaInfoData]), from: 0)
        let peer = try #require(data[NetlinkABI.vethInfoPeer])
        #expect(readUInt32(peer, at: 8) == 0 && readUInt32(peer, at: 12) == 0)  // peer flags/change
        let peerAttributes = NetlinkAttributes(peer, from: NetlinkABI.ifinfomsgSize)
        #expect(peerAttributes.uint32(NetlinkABI.iflaNetNsFD) == 9)
        #expect(peerAttributes.string(NetlinkABI.iflaIfname) == "eth0")
        #expect(peerAttributes.uint32(NetlinkABI.iflaMTU) == 1450)
    }

    @Test("set up/down, master and mtu change a link named by IFLA_IFNAME without NLM_F_CREATE")
    func linkChangesByName() throws {
        let socket = RecordingNetlinkSocket()
        let session = NetlinkSession(socket: socket)
        try session.setLinkUp(name: "cni0")
        try session.setLinkDown(name: "cni0")
        try session.setMaster(name: "veth1", masterIndex: 4)
        try session.setMTU(name: "veth1", mtu: 9000)
        let requests = socket.sentRequests.map(DecodedRequest.init)
        #expect(requests.map(\.type) == [16, 16, 16, 16])
        #expect(requests.allSatisfy { $0.flags == NetlinkABI.request | NetlinkABI.ack && $0.linkIndex == 0 })
        #expect(requests.map(\.name) == ["cni0", "cni0", "veth1", "veth1"])
        #expect(requests.map(\.linkFlags) == [1, 0, 0, 0])
        #expect(requests.map { readUInt32($0.payload, at: 12) } == [1, 1, 0, 0])
        #expect(requests[2].attributes.uint32(NetlinkABI.iflaMaster) == 4)
        #expect(requests[3].attributes.uint32(NetlinkABI.iflaMTU) == 9000)
    }

    @Test func deleteAndRemoveAddressAndLinkRoute() throws {
        let socket = RecordingNetlinkSocket()
        let session = NetlinkSession(socket: socket)
        #expect(try session.deleteLink(name: "veth1"))
        #expect(try session.removeAddress(#require(IPv4.CIDR("10.244.0.9/24")), index: 3))
        try session.addRoute(destination: IPv4.CIDR("10.96.0.0/12"), gateway: nil, outputIndex: 3)
        let requests = socket.sentRequests.map(DecodedRequest.init)
        #expect(requests[0].type == NetlinkABI.deleteLink && requests[0].name == "veth1")
        #expect(requests[1].type == NetlinkABI.deleteAddress)
        #expect(requests[1].attributes[NetlinkABI.ifaLocal] == [10, 244, 0, 9])
        #expect(requests[1].attributes[NetlinkABI.ifaBroadcast] == nil)
        let route = requests[2]
        #expect(route.payload[1] == 12)  // destination length
        #expect(route.payload[6] == NetlinkABI.scopeLink)
        #expect(route.attributes[NetlinkABI.rtaDestination] == [10, 96, 0, 0])
        #expect(route.attributes[NetlinkABI.rtaGateway] == nil)
        #expect(route.attributes.uint32(NetlinkABI.rtaOutputInterface) == 3)
    }

    @Test("names the kernel would refuse are refused before sending, naming the culprit",
          arguments: ["", "sixteen-chars-xx", "a/b", "a b"])
    func invalidInterfaceNames(_ name: String) {
        let socket = RecordingNetlinkSocket()
        #expect(throws: NetlinkError.self) { try NetlinkSession(socket: socket).setLinkUp(name: name) }
        #expect(socket.sentRequests.isEmpty)
    }
}
