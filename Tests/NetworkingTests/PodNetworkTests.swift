import Foundation
import Testing
@testable import Networking

/// PodNetwork against pretend kernels: which requests go to which namespace, in what order,
/// and what is undone when a step fails.
@Suite("PodNetwork (fake netlink)")
struct PodNetworkTests {
    struct Fixture {
        let namespaces = FakeNamespaces()
        let proc: FakeProcSys
        let scratch: ScratchDirectory
        let network: PodNetwork

        init(bridgeNetfilter: Bool = true) throws {
            var values = ["net/ipv4/ip_forward": "0", "net/ipv4/conf/cni0/route_localnet": "0"]
            if bridgeNetfilter { values["net/bridge/bridge-nf-call-iptables"] = "0" }
            proc = try FakeProcSys(values)
            scratch = try ScratchDirectory()
            let ipam = try IPAM(subnet: #require(IPv4.CIDR("10.244.0.0/24")), directory: scratch.path + "/ipam")
            network = PodNetwork(ipam: ipam, sysctls: try SysctlJournal(sysctl: proc.sysctl), sockets: namespaces)
        }

        func cleanup() {
            proc.scratch.cleanup()
            scratch.cleanup()
        }

        var gateway: IPv4.CIDR { network.gatewayCIDR }
    }

    @Test("ensureBridge creates, addresses and raises the bridge once, and sets the sysctls")
    func ensureBridge() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
        let first = f.namespaces.requests("node").map(DecodedRequest.init)
        #expect(first.map(\.type) == [NetlinkABI.getLink, NetlinkABI.newLink, NetlinkABI.getLink, NetlinkABI.newAddress, NetlinkABI.newLink])
        #expect(first[1].attributes[NetlinkABI.iflaAddress] == [0x0a, 0x58, 10, 244, 0, 1])
        #expect(first[3].attributes[NetlinkABI.ifaLocal] == [10, 244, 0, 1])
        #expect(first[4].linkFlags == 1)
        #expect(f.proc.value("net/ipv4/ip_forward") == "1")
        #expect(f.proc.value("net/bridge/bridge-nf-call-iptables") == "1")
        #expect(f.proc.value("net/ipv4/conf/cni0/route_localnet") == "1")

        // Second start: the bridge exists and is up; the address is already there (EEXIST).
        f.namespaces.node.fail(NetlinkABI.newAddress, errno: EEXIST)
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
        let second = f.namespaces.requests("node").map(DecodedRequest.init).dropFirst(first.count)
        #expect(second.map(\.type) == [NetlinkABI.getLink, NetlinkABI.newAddress])
        #expect(f.namespaces.socketCount("node") == 1)
    }

    @Test("ensureBridge works without br_netfilter and refuses a gateway outside the pod subnet or a non-bridge link")
    func ensureBridgeEdges() throws {
        let f = try Fixture(bridgeNetfilter: false)
        defer { f.cleanup() }
        #expect(throws: PodNetworkError.self) {
            try f.network.ensureBridge(name: "cni0", gateway: #require(IPv4.CIDR("10.244.0.2/24")))
        }
        f.namespaces.node.addLink("cni1", kind: "veth", up: true)
        let error = try #require(throws: PodNetworkError.self) { try f.network.ensureBridge(name: "cni1", gateway: f.gateway) }
        #expect(error.description.contains("is a veth device"))
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
    }

    @Test("attach: one veth request with the peer in the pod's namespace, hairpin on, then the pod side")
    func attach() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
        let before = f.namespaces.requests("node").count
        let bridgeIndex = try #require(f.namespaces.node.links["cni0"]).index

        let result = try f.network.attach(podUID: "uid-a", netnsPath: "/run/netns/a")
        let hostName = PodNetwork.hostInterfaceName(podUID: "uid-a")
        #expect(result == PodAddress(address: IPv4.Address(10, 244, 0, 2), gateway: IPv4.Address(10, 244, 0, 1),
                                     prefixLength: 24, hostInterface: hostName, podInterface: "eth0"))

        let node = f.namespaces.requests("node").dropFirst(before).map(DecodedRequest.init)
        #expect(node.map(\.type) == [NetlinkABI.newLink, NetlinkABI.getLink, NetlinkABI.setLink])
        let veth = node[0]
        #expect(veth.name == hostName)
        #expect(veth.attributes.uint32(NetlinkABI.iflaMaster) == UInt32(bridgeIndex))
        let info = NetlinkAttributes(try #require(veth.attributes[NetlinkABI.iflaLinkinfo]), from: 0)
        let data = try #require(info[NetlinkABI.iflaInfoData])
        let peer = try #require(NetlinkAttributes(data, from: 0)[NetlinkABI.vethInfoPeer])
        let peerAttributes = NetlinkAttributes(peer, from: NetlinkABI.ifinfomsgSize)
        #expect(peerAttributes.uint32(NetlinkABI.iflaNetNsFD) == 100)
        #expect(peerAttributes.string(NetlinkABI.iflaIfname) == "eth0")
        let hostIndex = try #require(f.namespaces.node.links[hostName]).index
        #expect(node[2].payload[0] == NetlinkABI.afBridge && node[2].linkIndex == hostIndex)

        let pod = f.namespaces.requests("/run/netns/a").map(DecodedRequest.init)
        #expect(pod.map(\.type) == [NetlinkABI.getLink, NetlinkABI.newAddress, NetlinkABI.newLink, NetlinkABI.newLink, NetlinkABI.newRoute])
        #expect(pod[0].name == "eth0")
        #expect(pod[1].payload[1] == 24 && pod[1].attributes[NetlinkABI.ifaLocal] == [10, 244, 0, 2])
        #expect(pod[2].name == "eth0" && pod[2].linkFlags == 1)
        #expect(pod[3].name == "lo" && pod[3].linkFlags == 1)
        let eth0 = try #require(f.namespaces.pod("/run/netns/a").links["eth0"])
        #expect(eth0.flags == 1)
        #expect(try #require(f.namespaces.pod("/run/netns/a").links["lo"]).flags == 1)
        #expect(pod[4].attributes[NetlinkABI.rtaGateway] == [10, 244, 0, 1])
        #expect(pod[4].attributes.uint32(NetlinkABI.rtaOutputInterface) == UInt32(eth0.index))
        // The host side never touched the pod's kernel directly, and vice versa.
        #expect(f.namespaces.pod("/run/netns/a").links[hostName] == nil)
    }

    @Test("attach before ensureBridge is refused without allocating")
    func attachBeforeBridge() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        #expect(throws: PodNetworkError.self) { try f.network.attach(podUID: "a", netnsPath: "/run/netns/a") }
        #expect(f.network.ipam.list().isEmpty)
    }

    @Test("a failing pod-side step deletes the host veth and frees the address")
    func attachRollback() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
        f.namespaces.pod("/run/netns/a").fail(NetlinkABI.newRoute, errno: ENETUNREACH)
        let error = try #require(throws: PodNetworkError.self) { try f.network.attach(podUID: "a", netnsPath: "/run/netns/a") }
        #expect(error.description.contains("add default route via 10.244.0.1"))
        #expect(error.description.contains("ENETUNREACH"))
        #expect(f.namespaces.node.links[PodNetwork.hostInterfaceName(podUID: "a")] == nil)
        #expect(f.network.ipam.list().isEmpty)
    }

    @Test("a leftover host veth from an interrupted attach is replaced")
    func attachReplacesLeftover() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
        let hostName = PodNetwork.hostInterfaceName(podUID: "a")
        f.namespaces.node.addLink(hostName, kind: "veth", up: false)
        _ = try f.network.attach(podUID: "a", netnsPath: "/run/netns/a")
        let types = f.namespaces.requests("node").suffix(5).map { DecodedRequest($0).type }
        #expect(types == [NetlinkABI.newLink, NetlinkABI.deleteLink, NetlinkABI.newLink, NetlinkABI.getLink, NetlinkABI.setLink])
    }

    @Test("detach deletes the host veth by name and frees the address; again is a no-op")
    func detach() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
        _ = try f.network.attach(podUID: "a", netnsPath: "/run/netns/a")
        try f.network.detach(podUID: "a", netnsPath: "/run/netns/a")
        try f.network.detach(podUID: "a", netnsPath: "/run/netns/a")
        #expect(f.namespaces.node.links[PodNetwork.hostInterfaceName(podUID: "a")] == nil)
        #expect(f.network.ipam.list().isEmpty)
        let deletes = f.namespaces.requests("node").map(DecodedRequest.init).filter { $0.type == NetlinkABI.deleteLink }
        #expect(deletes.count == 2)
    }

    @Test("removeBridge deletes the bridge and restores the sysctls")
    func removeBridge() throws {
        let f = try Fixture()
        defer { f.cleanup() }
        try f.network.ensureBridge(name: "cni0", gateway: f.gateway)
        try f.network.removeBridge()
        #expect(f.namespaces.node.links["cni0"] == nil)
        #expect(f.proc.value("net/ipv4/ip_forward") == "0")
        #expect(f.proc.value("net/bridge/bridge-nf-call-iptables") == "0")
        try f.network.removeBridge()
    }

    @Test("host veth names are stable, 12 characters and differ per pod")
    func hostNames() {
        let a = PodNetwork.hostInterfaceName(podUID: "3f8a2c1e-0000-4000-8000-000000000001")
        #expect(a == PodNetwork.hostInterfaceName(podUID: "3f8a2c1e-0000-4000-8000-000000000001"))
        #expect(a.count == 12 && a.hasPrefix("veth"))
        #expect(a != PodNetwork.hostInterfaceName(podUID: "3f8a2c1e-0000-4000-8000-000000000002"))
        #expect(PodNetwork.hostInterfaceName(podUID: "") == "veth811c9dc5")
    }

    @Test("RecordingPodNetwork hands out stable addresses and records calls")
    func recordingPodNetwork() throws {
        let fake = RecordingPodNetwork()
        let gateway = try #require(IPv4.CIDR("10.244.0.1/24"))
        try fake.ensureBridge(name: "cni0", gateway: gateway)
        let a = try fake.attach(podUID: "a", netnsPath: "/x")
        #expect(try fake.attach(podUID: "a", netnsPath: "/x").address == a.address)
        #expect(try fake.attach(podUID: "b", netnsPath: "/y").address != a.address)
        try fake.detach(podUID: "a", netnsPath: "/x")
        #expect(fake.calls.first == .ensureBridge(name: "cni0", gateway: gateway))
        #expect(fake.calls.last == .detach(podUID: "a", netnsPath: "/x"))
    }
}
