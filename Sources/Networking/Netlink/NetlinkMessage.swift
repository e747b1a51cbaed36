// Building and reading rtnetlink messages as plain bytes.
//
// Netlink integers are in host byte order (the kernel and this process share a CPU), while
// addresses inside attributes are in network order. Every attribute and every message is
// padded to 4 bytes. Glibc's Swift module does not import the Linux uapi headers, so the ABI
// numbers we need are restated in `NetlinkABI`; they are kernel ABI and never change meaning.

/// Numbers from linux/netlink.h, linux/rtnetlink.h, linux/if_link.h, linux/if_addr.h,
/// linux/veth.h and linux/if_bridge.h.
enum NetlinkABI {
    static let protocolRoute: Int32 = 0  // NETLINK_ROUTE
    static let solNetlink: Int32 = 270
    static let capAck: Int32 = 10  // NETLINK_CAP_ACK: do not echo our request back in errors
    static let extAck: Int32 = 11  // NETLINK_EXT_ACK: let the kernel say *why* in errors

    static let headerSize = 16  // struct nlmsghdr
    static let alignment = 4

    // Message types.
    static let noop: UInt16 = 1
    static let error: UInt16 = 2
    static let done: UInt16 = 3
    static let overrun: UInt16 = 4
    static let newLink: UInt16 = 16
    static let deleteLink: UInt16 = 17
    static let getLink: UInt16 = 18
    static let setLink: UInt16 = 19
    static let newAddress: UInt16 = 20
    static let deleteAddress: UInt16 = 21
    static let newRoute: UInt16 = 24
    static let deleteRoute: UInt16 = 25

    // nlmsghdr flags.
    static let request: UInt16 = 0x1
    static let multi: UInt16 = 0x2
    static let ack: UInt16 = 0x4
    static let excl: UInt16 = 0x200
    static let create: UInt16 = 0x400
    // Flags the kernel sets on an NLMSG_ERROR reply.
    static let capped: UInt16 = 0x100
    static let ackTLVs: UInt16 = 0x200
    static let errorAttributeMessage: UInt16 = 1  // NLMSGERR_ATTR_MSG

    // Attribute header bits.
    static let nested: UInt16 = 0x8000  // NLA_F_NESTED
    static let typeMask: UInt16 = 0x3fff

    // Address families.
    static let afUnspec: UInt8 = 0
    static let afInet: UInt8 = 2
    static let afBridge: UInt8 = 7

    // struct sizes.
    static let ifinfomsgSize = 16
    static let ifaddrmsgSize = 8
    static let rtmsgSize = 12

    // IFLA_* (link attributes).
    static let iflaAddress: UInt16 = 1
    static let iflaIfname: UInt16 = 3
    static let iflaMTU: UInt16 = 4
    static let iflaMaster: UInt16 = 10
    static let iflaProtinfo: UInt16 = 12
    static let iflaOperstate: UInt16 = 16
    static let iflaLinkinfo: UInt16 = 18
    static let iflaNetNsFD: UInt16 = 28
    static let iflaInfoKind: UInt16 = 1
    static let iflaInfoData: UInt16 = 2
    static let vethInfoPeer: UInt16 = 1
    static let iflaBrportMode: UInt16 = 4  // hairpin

    // IFA_* (address attributes).
    static let ifaAddress: UInt16 = 1
    static let ifaLocal: UInt16 = 2
    static let ifaBroadcast: UInt16 = 4

    // RTA_* and rtmsg field values.
    static let rtaDestination: UInt16 = 1
    static let rtaOutputInterface: UInt16 = 4
    static let rtaGateway: UInt16 = 5
    static let tableMain: UInt8 = 254
    static let protocolBoot: UInt8 = 3
    static let scopeUniverse: UInt8 = 0
    static let scopeLink: UInt8 = 253
    static let typeUnicast: UInt8 = 1

    // Interface flags (net/if.h).
    static let iffUp: UInt32 = 0x1

    static func aligned(_ length: Int) -> Int { (length + alignment - 1) & ~(alignment - 1) }
}

/// Appends a netlink request to a byte buffer: header, fixed family struct, attributes.
///
/// `sequence` is filled in by `NetlinkSession` when it sends, so a builder describes *what*
/// to ask and the session decides *which* request number it is.
struct NetlinkRequest: Equatable {
    private(set) var bytes: [UInt8]

    init(type: UInt16, flags: UInt16) {
        bytes = []
        bytes.reserveCapacity(128)
        append(UInt32(0))  // length, patched in `finished`
        append(type)
        append(flags)
        append(UInt32(0))  // sequence
        append(UInt32(0))  // port id: 0 lets the kernel route the reply to this socket
    }

    var type: UInt16 { UInt16(bytes[4]) | UInt16(bytes[5]) << 8 }

    mutating func append<T: FixedWidthInteger>(_ value: T) {
        withUnsafeBytes(of: value) { bytes.append(contentsOf: $0) }
    }

    /// Bytes copied as they are (an echoed header in a fake error reply).
    mutating func appendRaw<S: Sequence>(_ raw: S) where S.Element == UInt8 {
        bytes.append(contentsOf: raw)
    }

    mutating func pad() {
        while bytes.count % NetlinkABI.alignment != 0 { bytes.append(0) }
    }

    /// struct ifinfomsg.
    mutating func appendLinkHeader(family: UInt8 = NetlinkABI.afUnspec, index: Int32 = 0,
                                   flags: UInt32 = 0, change: UInt32 = 0) {
        append(family)
        append(UInt8(0))  // padding
        append(UInt16(0))  // ifi_type (ARPHRD_*), only meaningful in replies
        append(index)
        append(flags)
        append(change)
    }

    /// struct ifaddrmsg.
    mutating func appendAddressHeader(family: UInt8, prefixLength: UInt8, scope: UInt8 = 0, index: Int32) {
        append(family)
        append(prefixLength)
        append(UInt8(0))  // IFA_F_* flags
        append(scope)
        append(UInt32(bitPattern: index))
    }

    /// struct rtmsg.
    mutating func appendRouteHeader(family: UInt8, destinationLength: UInt8, table: UInt8,
                                    protocol routeProtocol: UInt8, scope: UInt8, type: UInt8) {
        append(family)
        append(destinationLength)
        append(UInt8(0))  // source length
        append(UInt8(0))  // TOS
        append(table)
        append(routeProtocol)
        append(scope)
        append(type)
        append(UInt32(0))  // RTM_F_* flags
    }

    mutating func attribute(_ type: UInt16, bytes payload: [UInt8]) {
        append(UInt16(4 + payload.count))
        append(type)
        bytes.append(contentsOf: payload)
        pad()
    }

    mutating func attribute(_ type: UInt16, uint32 value: UInt32) {
        var payload: [UInt8] = []
        withUnsafeBytes(of: value) { payload.append(contentsOf: $0) }
        attribute(type, bytes: payload)
    }

    mutating func attribute(_ type: UInt16, int32 value: Int32) {
        attribute(type, uint32: UInt32(bitPattern: value))
    }

    mutating func attribute(_ type: UInt16, uint8 value: UInt8) {
        attribute(type, bytes: [value])
    }

    /// A NUL-terminated string, as the kernel expects for interface names.
    mutating func attribute(_ type: UInt16, string: String) {
        attribute(type, bytes: Array(string.utf8) + [0])
    }

    /// A string without the NUL, the way iproute2 sends IFLA_INFO_KIND. The kernel accepts
    /// both; matching iproute2 byte for byte lets tests compare against its captured requests.
    mutating func attribute(_ type: UInt16, unterminated string: String) {
        attribute(type, bytes: Array(string.utf8))
    }

    /// An attribute whose payload is other attributes (or, for a veth peer, a struct ifinfomsg
    /// followed by attributes). The length is patched once the body is written.
    mutating func nested(_ type: UInt16, _ body: (inout NetlinkRequest) -> Void) {
        let start = bytes.count
        append(UInt16(0))
        append(type)
        body(&self)
        let length = UInt16(bytes.count - start)
        withUnsafeBytes(of: length) { raw in
            bytes[start] = raw[0]
            bytes[start + 1] = raw[1]
        }
    }

    /// The wire bytes with the total length and the sequence number filled in.
    func finished(sequence: UInt32) -> [UInt8] {
        var result = bytes
        withUnsafeBytes(of: UInt32(result.count)) { raw in
            for i in 0..<4 { result[i] = raw[i] }
        }
        withUnsafeBytes(of: sequence) { raw in
            for i in 0..<4 { result[8 + i] = raw[i] }
        }
        return result
    }
}

/// One message cut out of a datagram the kernel sent.
struct NetlinkReply: Equatable {
    var type: UInt16
    var flags: UInt16
    var sequence: UInt32
    var portID: UInt32
    /// Everything after the 16-byte header.
    var payload: [UInt8]

    /// Splits a datagram into its messages. Throws when a length field points outside the
    /// datagram: continuing would misread every following message.
    static func parse(datagram: [UInt8]) throws -> [NetlinkReply] {
        var messages: [NetlinkReply] = []
        var offset = 0
        while datagram.count - offset >= NetlinkABI.headerSize {
            let length = Int(readUInt32(datagram, at: offset))
            guard length >= NetlinkABI.headerSize, offset + length <= datagram.count else {
                throw NetlinkError(operation: "parse netlink reply", errno: EBADMSG_VALUE,
                                   detail: "message at offset \(offset) claims \(length) bytes; datagram has \(datagram.count)")
            }
            messages.append(NetlinkReply(
                type: readUInt16(datagram, at: offset + 4),
                flags: readUInt16(datagram, at: offset + 6),
                sequence: readUInt32(datagram, at: offset + 8),
                portID: readUInt32(datagram, at: offset + 12),
                payload: Array(datagram[(offset + NetlinkABI.headerSize)..<(offset + length)])
            ))
            offset += NetlinkABI.aligned(length)
        }
        return messages
    }
}

/// EBADMSG on Linux; restated so the parser does not depend on Glibc's spelling.
let EBADMSG_VALUE: Int32 = 74

func readUInt16(_ bytes: [UInt8], at offset: Int) -> UInt16 {
    UInt16(bytes[offset]) | UInt16(bytes[offset + 1]) << 8
}

func readUInt32(_ bytes: [UInt8], at offset: Int) -> UInt32 {
    UInt32(bytes[offset]) | UInt32(bytes[offset + 1]) << 8 | UInt32(bytes[offset + 2]) << 16 | UInt32(bytes[offset + 3]) << 24
}

/// Reads the attributes that follow a fixed-size header inside a payload.
///
/// When an attribute type repeats, the last one wins, which is how the kernel itself reads
/// its own replies. Malformed trailing bytes end the walk instead of trapping: a reply from a
/// newer kernel with something we do not understand must not crash the node agent.
struct NetlinkAttributes {
    private(set) var values: [UInt16: [UInt8]] = [:]

    init(_ bytes: [UInt8], from start: Int) {
        var offset = start
        while bytes.count - offset >= 4 {
            let length = Int(readUInt16(bytes, at: offset))
            let type = readUInt16(bytes, at: offset + 2) & NetlinkABI.typeMask
            guard length >= 4, offset + length <= bytes.count else { break }
            values[type] = Array(bytes[(offset + 4)..<(offset + length)])
            offset += NetlinkABI.aligned(length)
        }
    }

    subscript(type: UInt16) -> [UInt8]? { values[type] }

    func uint32(_ type: UInt16) -> UInt32? {
        guard let value = values[type], value.count >= 4 else { return nil }
        return readUInt32(value, at: 0)
    }

    func string(_ type: UInt16) -> String? {
        guard let value = values[type] else { return nil }
        let text = value.prefix { $0 != 0 }
        return String(decoding: text, as: UTF8.self)
    }
}
