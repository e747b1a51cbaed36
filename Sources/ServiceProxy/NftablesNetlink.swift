import Glibc
import Networking

/// nf_tables netlink messages for the few operations a delta needs besides writing chains:
/// delete a chain or a set, add or delete map and set elements, and ask for the table's
/// handle. Pure byte building, checked in tests without root. The layouts are the kernel's
/// (`include/uapi/linux/netfilter/nf_tables.h`, `nfnetlink.h`).
enum NftablesNetlink {
    static let netlinkNetfilter: Int32 = 12
    static let subsystem: UInt16 = 10  // NFNL_SUBSYS_NFTABLES
    static let batchBegin: UInt16 = 0x10, batchEnd: UInt16 = 0x11
    static let getTable: UInt16 = 1, deleteChain: UInt16 = 5, deleteSet: UInt16 = 11
    static let newSetElement: UInt16 = 12, deleteSetElement: UInt16 = 14
    static let request: UInt16 = 0x1, acknowledge: UInt16 = 0x4, create: UInt16 = 0x400
    static let familyIPv4: UInt8 = 2
    static let nested: UInt16 = 0x8000
    static let errorType: UInt16 = 2, doneType: UInt16 = 3

    enum Operation: Equatable {
        case deleteChain(String)
        case deleteSet(String)
        case addElements(set: String, [String])
        case deleteElements(set: String, [String])
    }

    struct Unencodable: Error, CustomStringConvertible {
        var description: String
    }

    /// The netlink operations of a delta: elements first (deletes, then adds, so an element
    /// whose verdict changed is replaced), then chains and sets nothing refers to any more.
    static func operations(_ delta: NftablesDelta) -> [Operation] {
        var ops: [Operation] = []
        for (map, group) in grouped(delta.elementsRemoved) { ops.append(.deleteElements(set: map, group.map(NftablesDelta.key))) }
        for (map, group) in grouped(delta.elementsAdded) { ops.append(.addElements(set: map, group)) }
        ops += delta.chainsRemoved.map(Operation.deleteChain)
        ops += delta.setsRemoved.map(Operation.deleteSet)
        return ops
    }

    static func grouped(_ elements: [NftablesRules.Element]) -> [(String, [String])] {
        var order: [String] = []
        var groups: [String: [String]] = [:]
        for e in elements {
            if groups[e.map] == nil { order.append(e.map) }
            groups[e.map, default: []].append(e.element)
        }
        return order.map { ($0, groups[$0] ?? []) }
    }

    /// One batch (one transaction): begin, the operations, end. Only the last operation asks
    /// for an acknowledgement; the kernel reports every failure anyway, so reading up to that
    /// acknowledgement sees all of them without one reply per message filling the socket.
    static func batch(_ ops: [Operation], firstSequence: UInt32) throws -> (bytes: [UInt8], lastSequence: UInt32) {
        var out = message(type: batchBegin, flags: request, sequence: firstSequence, family: 0, resourceID: subsystem, payload: [])
        var sequence = firstSequence
        for (i, op) in ops.enumerated() {
            sequence += 1
            let ack = i == ops.count - 1 ? acknowledge : 0
            out += try encode(op, sequence: sequence, extraFlags: ack)
        }
        let last = sequence
        sequence += 1
        out += message(type: batchEnd, flags: request, sequence: sequence, family: 0, resourceID: subsystem, payload: [])
        return (out, last)
    }

    static func encode(_ op: Operation, sequence: UInt32, extraFlags: UInt16) throws -> [UInt8] {
        let table = attribute(1, string(NftablesRules.table))
        switch op {
        case .deleteChain(let name):
            // NFTA_CHAIN_TABLE, NFTA_CHAIN_NAME. Deleting a chain deletes its rules with it.
            return message(type: deleteChain, flags: request | extraFlags, sequence: sequence, payload: table + attribute(3, string(name)))
        case .deleteSet(let name):
            return message(type: deleteSet, flags: request | extraFlags, sequence: sequence, payload: table + attribute(2, string(name)))
        case .addElements(let set, let elements), .deleteElements(let set, let elements):
            var list: [UInt8] = []
            for e in elements { list += attribute(1, try element(e), nested: true) }  // NFTA_LIST_ELEM
            // NFTA_SET_ELEM_LIST_TABLE, _SET, _ELEMENTS.
            let payload = table + attribute(2, string(set)) + attribute(3, list, nested: true)
            if case .addElements = op {
                return message(type: newSetElement, flags: request | create | extraFlags, sequence: sequence, payload: payload)
            }
            return message(type: deleteSetElement, flags: request | extraFlags, sequence: sequence, payload: payload)
        }
    }

    /// `10.96.0.10 . tcp . 53 : goto service-X` as NFTA_SET_ELEM_KEY (and _DATA for a verdict).
    static func element(_ text: String) throws -> [UInt8] {
        let halves = text.components(separatedBy: " : ")
        var out = attribute(1, attribute(1, try key(halves[0])), nested: true)  // NFTA_SET_ELEM_KEY { NFTA_DATA_VALUE }
        if halves.count == 2 {
            let words = halves[1].split(separator: " ").map(String.init)
            // NF_DROP 0 (internalTrafficPolicy Local without a local endpoint), NFT_JUMP -3, NFT_GOTO -4.
            let verdict: [UInt8]
            if words == ["drop"] {
                verdict = attribute(1, bigEndian(UInt32(0)))
            } else if words.count == 2, let code: Int32 = ["jump": -3, "goto": -4][words[0]] {
                verdict = attribute(1, bigEndian(UInt32(bitPattern: code))) + attribute(2, string(words[1]))
            } else {
                throw Unencodable(description: "verdict \(halves[1]) in element \(text)")
            }
            // NFTA_SET_ELEM_DATA { NFTA_DATA_VERDICT { NFTA_VERDICT_CODE[, NFTA_VERDICT_CHAIN] } }
            out += attribute(2, attribute(2, verdict, nested: true), nested: true)
        }
        return out
    }

    /// A concatenated key: each field in network order, padded to 4 bytes as nf_tables'
    /// registers are (an inet_proto is one byte, an inet_service two).
    static func key(_ text: String) throws -> [UInt8] {
        var out: [UInt8] = []
        for field in text.components(separatedBy: " . ") {
            let f = field.trimmingCharacters(in: .whitespaces)
            if let proto = ["tcp": 6, "udp": 17, "sctp": 132][f] {
                out += [UInt8(proto), 0, 0, 0]
            } else if let address = IPv4.Address(f) {
                out += bigEndian(address.value)
            } else if let port = UInt16(f) {
                out += [UInt8(port >> 8), UInt8(port & 0xff), 0, 0]
            } else {
                throw Unencodable(description: "key field \(f) in \(text)")
            }
        }
        return out
    }

    static func getTableRequest(sequence: UInt32) -> [UInt8] {
        message(type: getTable, flags: request | acknowledge, sequence: sequence, payload: attribute(1, string(NftablesRules.table)))
    }

    /// NFTA_TABLE_HANDLE (4) from a NEWTABLE reply.
    static func tableHandle(inReplyPayload payload: ArraySlice<UInt8>) -> UInt64? {
        var i = payload.startIndex + 4  // nfgenmsg
        while i + 4 <= payload.endIndex {
            let length = Int(UInt16(payload[i]) | UInt16(payload[i + 1]) << 8)
            let type = (UInt16(payload[i + 2]) | UInt16(payload[i + 3]) << 8) & 0x3fff
            guard length >= 4, i + length <= payload.endIndex else { return nil }
            if type == 4, length == 12 {
                return payload[(i + 4)..<(i + 12)].reduce(UInt64(0)) { $0 << 8 | UInt64($1) }
            }
            i += (length + 3) & ~3
        }
        return nil
    }

    // MARK: Framing

    static func message(type: UInt16, flags: UInt16, sequence: UInt32, family: UInt8 = familyIPv4,
                        resourceID: UInt16 = 0, payload: [UInt8]) -> [UInt8] {
        let messageType = type >= 0x10 && type <= 0x11 ? type : subsystem << 8 | type
        var out = littleEndian(UInt32(16 + 4 + payload.count)) + littleEndian16(messageType) + littleEndian16(flags)
        out += littleEndian(sequence) + littleEndian(0)
        out += [family, 0, UInt8(resourceID >> 8), UInt8(resourceID & 0xff)]  // nfgenmsg, res_id big-endian
        return out + payload
    }

    static func attribute(_ type: UInt16, _ payload: [UInt8], nested isNested: Bool = false) -> [UInt8] {
        let length = 4 + payload.count
        var out = littleEndian16(UInt16(length)) + littleEndian16(type | (isNested ? nested : 0)) + payload
        out += [UInt8](repeating: 0, count: (4 - length % 4) % 4)
        return out
    }

    static func string(_ s: String) -> [UInt8] { Array(s.utf8) + [0] }
    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xff), UInt8(v >> 8 & 0xff), UInt8(v & 0xff)] }
    static func littleEndian(_ v: UInt32) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8 & 0xff), UInt8(v >> 16 & 0xff), UInt8(v >> 24)] }
    static func littleEndian16(_ v: UInt16) -> [UInt8] { [UInt8(v & 0xff), UInt8(v >> 8)] }

    /// Each netlink message in a datagram: (type, sequence, payload after the 16-byte header).
    static func messages(in datagram: [UInt8]) -> [(type: UInt16, sequence: UInt32, payload: ArraySlice<UInt8>)] {
        var out: [(UInt16, UInt32, ArraySlice<UInt8>)] = []
        var i = 0
        while i + 16 <= datagram.count {
            let length = Int(datagram[i..<(i + 4)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) })
            guard length >= 16, i + length <= datagram.count else { break }
            let type = UInt16(datagram[i + 4]) | UInt16(datagram[i + 5]) << 8
            let sequence = datagram[(i + 8)..<(i + 12)].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            out.append((type, sequence, datagram[(i + 16)..<(i + length)]))
            i += (length + 3) & ~3
        }
        return out
    }

    /// The errno of an NLMSG_ERROR payload (0 for an acknowledgement), positive.
    static func errorCode(_ payload: ArraySlice<UInt8>) -> Int32 {
        guard payload.count >= 4 else { return EPROTO }
        let raw = payload.prefix(4).reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
        return -Int32(bitPattern: raw)
    }
}

/// A NETLINK_NETFILTER socket in the network namespace of the thread that opens it.
final class NetfilterNetlinkSocket: NetlinkSocket {
    private let descriptor: Int32

    init(receiveTimeoutSeconds: Int = 10) throws {
        descriptor = try RawNetlink.open(protocol: NftablesNetlink.netlinkNetfilter, name: "NETLINK_NETFILTER",
                                                 receiveTimeoutSeconds: receiveTimeoutSeconds)
    }

    deinit { close(descriptor) }

    func send(_ datagram: [UInt8]) throws {
        // A batch larger than the default send buffer needs a bigger one (nft does the same).
        var size = Int32(datagram.count + 4096)
        if datagram.count > 128 * 1024 {
            _ = setsockopt(descriptor, SOL_SOCKET, SO_SNDBUFFORCE, &size, socklen_t(MemoryLayout<Int32>.size))
        }
        while true {
            let sent = datagram.withUnsafeBytes { Glibc.send(descriptor, $0.baseAddress, $0.count, 0) }
            if sent == datagram.count { return }
            let code = errno
            if sent < 0 && code == EINTR { continue }
            throw NetlinkError(operation: "send nf_tables batch", errno: sent < 0 ? code : EMSGSIZE)
        }
    }

    func receive() throws -> [UInt8] {
        var buffer = [UInt8](repeating: 0, count: 64 * 1024)
        while true {
            let received = buffer.withUnsafeMutableBytes { recv(descriptor, $0.baseAddress, $0.count, 0) }
            if received >= 0 { return Array(buffer[0..<received]) }
            let code = errno
            if code == EINTR { continue }
            throw NetlinkError(operation: "receive nf_tables reply", errno: code,
                               detail: code == EAGAIN ? "no reply from the kernel before the timeout" : nil)
        }
    }
}
