import Foundation
import Testing
@testable import Networking

@Suite("NetlinkSession: replies, acknowledgements and errors")
struct NetlinkSessionTests {
    @Test("a refusal becomes a NetlinkError with the operation, errno name, text and kernel message")
    func refusalCarriesErrnoAndExtendedAck() throws {
        let socket = RecordingNetlinkSocket { request in
            [RecordingNetlinkSocket.acknowledgement(for: request, errno: EEXIST, message: "Link already exists")]
        }
        let error = try #require(throws: NetlinkError.self) {
            try NetlinkSession(socket: socket).createBridge(name: "cni0")
        }
        #expect(error.errno == EEXIST)
        #expect(error.errnoName == "EEXIST")
        #expect(error.operation == "create bridge cni0")
        #expect(error.detail == "Link already exists")
        #expect(error.description == "create bridge cni0: EEXIST (File exists): Link already exists")
    }

    @Test("an uncapped error (request echoed whole) still yields the kernel message")
    func uncappedErrorMessage() throws {
        let socket = RecordingNetlinkSocket { request in
            var reply = NetlinkRequest(type: NetlinkABI.error, flags: NetlinkABI.ackTLVs)
            reply.append(-EINVAL)
            reply.appendRaw(request)
            reply.attribute(NetlinkABI.errorAttributeMessage, string: "Unknown device type")
            return [reply.finished(sequence: RecordingNetlinkSocket.requestSequence(request))]
        }
        let error = try #require(throws: NetlinkError.self) {
            try NetlinkSession(socket: socket).createBridge(name: "br1")
        }
        #expect(error.errno == EINVAL)
        #expect(error.detail == "Unknown device type")
    }

    @Test("replies to an older request are skipped; the matching acknowledgement ends the wait")
    func staleRepliesAreSkipped() throws {
        let socket = RecordingNetlinkSocket { request in
            let sequence = RecordingNetlinkSocket.requestSequence(request)
            var stale = NetlinkRequest(type: NetlinkABI.error, flags: NetlinkABI.capped)
            stale.append(-ENODEV)
            stale.appendRaw([UInt8](repeating: 0, count: 16))
            // Stale refusal and real acknowledgement packed into one datagram.
            return [stale.finished(sequence: sequence &- 1) + RecordingNetlinkSocket.acknowledgement(for: request)]
        }
        try NetlinkSession(socket: socket, firstSequence: 40).setLinkUp(name: "cni0")
        #expect(RecordingNetlinkSocket.requestSequence(try #require(socket.sentRequests.first)) == 40)
    }

    @Test("sequence numbers increase per request")
    func sequenceNumbers() throws {
        let socket = RecordingNetlinkSocket()
        let session = NetlinkSession(socket: socket, firstSequence: 7)
        try session.setLinkUp(name: "a")
        try session.setLinkUp(name: "b")
        #expect(socket.sentRequests.map(RecordingNetlinkSocket.requestSequence) == [7, 8])
    }

    @Test("a link reply is parsed into index, name, flags, mtu, master and kind")
    func linkLookup() throws {
        let socket = RecordingNetlinkSocket { request in
            [RecordingNetlinkSocket.linkReply(for: request, index: 12, name: "veth1", flags: 0x1043, mtu: 1450, master: 3, kind: "veth"),
             RecordingNetlinkSocket.acknowledgement(for: request)]
        }
        let link = try #require(try NetlinkSession(socket: socket).link(named: "veth1"))
        #expect(link == LinkDescription(index: 12, name: "veth1", flags: 0x1043, mtu: 1450, masterIndex: 3, kind: "veth"))
        #expect(link.isUp)
        let request = DecodedRequest(try #require(socket.sentRequests.first))
        #expect(request.type == NetlinkABI.getLink)
        #expect(request.name == "veth1")
    }

    @Test("a missing link is nil for lookups and false for deletion, not an error")
    func missingLink() throws {
        let socket = RecordingNetlinkSocket { [RecordingNetlinkSocket.acknowledgement(for: $0, errno: ENODEV)] }
        let session = NetlinkSession(socket: socket)
        #expect(try session.link(named: "nope") == nil)
        #expect(try session.deleteLink(name: "nope") == false)
    }

    @Test("a removed address that was not there is false, not an error")
    func missingAddress() throws {
        let socket = RecordingNetlinkSocket { [RecordingNetlinkSocket.acknowledgement(for: $0, errno: EADDRNOTAVAIL)] }
        #expect(try NetlinkSession(socket: socket).removeAddress(#require(IPv4.CIDR("10.0.0.1/24")), index: 2) == false)
    }

    @Test("a datagram whose length field lies is an EBADMSG error, not a crash")
    func malformedDatagram() throws {
        let socket = RecordingNetlinkSocket { _ in [[0xff, 0, 0, 0, 2, 0, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0]] }
        let error = try #require(throws: NetlinkError.self) { try NetlinkSession(socket: socket).setLinkUp(name: "x") }
        #expect(error.errnoName == "EBADMSG")
    }

    @Test("no reply queued is an error from the fake (the real socket times out instead of hanging)")
    func noReply() {
        let socket = RecordingNetlinkSocket { _ in [] }
        #expect(throws: NetlinkError.self) { try NetlinkSession(socket: socket).setLinkUp(name: "x") }
    }
}
