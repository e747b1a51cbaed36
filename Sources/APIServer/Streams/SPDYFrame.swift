import CZlib
import NIOCore

/// SPDY/3.1 frames, as much of the protocol as kubectl's streams use (exec, attach and
/// port-forward before WebSockets, and port-forward inside WebSockets since 1.31).
///
/// Wire format: a control frame is `1 | version(15) | type(16) | flags(8) | length(24)`,
/// a data frame is `0 | stream id(31) | flags(8) | length(24)`, then `length` bytes.
enum SPDYFrame: Equatable, Sendable {
    case synStream(streamID: UInt32, associatedID: UInt32, fin: Bool, headers: [String: String])
    case synReply(streamID: UInt32, fin: Bool, headers: [String: String])
    case rstStream(streamID: UInt32, status: UInt32)
    case settings
    case ping(id: UInt32)
    case goAway(lastGoodStreamID: UInt32, status: UInt32)
    case headers(streamID: UInt32, headers: [String: String])
    case windowUpdate(streamID: UInt32, delta: UInt32)
    case data(streamID: UInt32, fin: Bool, payload: ByteBuffer)

    static let version: UInt16 = 3
    static let flagFin: UInt8 = 0x01
    /// RST_STREAM status codes used here.
    static let protocolError: UInt32 = 1
    static let invalidStream: UInt32 = 2
    static let refusedStream: UInt32 = 3
    static let cancel: UInt32 = 5
    static let streamInUse: UInt32 = 8
}

struct SPDYProtocolError: Error, Equatable, CustomStringConvertible {
    var description: String
}

/// The SPDY/3 header-compression dictionary (draft-mbelshe-httpbis-spdy-00, 2.6.10.1):
/// length-prefixed header names and common values, then a plain tail. Built from its
/// parts so that it can be read; `SPDYFrameTests` checks its length and zlib id.
enum SPDYDictionary {
    static let words = [
        "options", "head", "post", "put", "delete", "trace", "accept", "accept-charset", "accept-encoding",
        "accept-language", "accept-ranges", "age", "allow", "authorization", "cache-control", "connection",
        "content-base", "content-encoding", "content-language", "content-length", "content-location", "content-md5",
        "content-range", "content-type", "date", "etag", "expect", "expires", "from", "host", "if-match",
        "if-modified-since", "if-none-match", "if-range", "if-unmodified-since", "last-modified", "location",
        "max-forwards", "pragma", "proxy-authenticate", "proxy-authorization", "range", "referer", "retry-after",
        "server", "te", "trailer", "transfer-encoding", "upgrade", "user-agent", "vary", "via", "warning",
        "www-authenticate", "method", "get", "status", "200 OK", "version", "HTTP/1.1", "url", "public",
        "set-cookie", "keep-alive", "origin",
    ]
    static let tail = "100101201202205206300302303304305306307402405406407408409410411412413414415416417502504505"
        + "203 Non-Authoritative Information204 No Content301 Moved Permanently400 Bad Request401 Unauthorized"
        + "403 Forbidden404 Not Found500 Internal Server Error501 Not Implemented503 Service Unavailable"
        + "Jan Feb Mar Apr May Jun Jul Aug Sept Oct Nov Dec 00:00:00 Mon, Tue, Wed, Thu, Fri, Sat, Sun, GMT"
        + "chunked,text/html,image/png,image/jpg,image/gif,application/xml,application/xhtml+xml,text/plain,"
        + "text/javascript,publicprivatemax-age=gzip,deflate,sdchcharset=utf-8charset=iso-8859-1,utf-,*,enq=0."

    static let bytes: [UInt8] = {
        var out: [UInt8] = []
        for word in words {
            let n = UInt32(word.utf8.count)
            out += [UInt8(n >> 24), UInt8(truncatingIfNeeded: n >> 16), UInt8(truncatingIfNeeded: n >> 8), UInt8(truncatingIfNeeded: n)]
            out += Array(word.utf8)
        }
        return out + Array(tail.utf8)
    }()
}

/// One direction's header-block zlib stream: a connection keeps one context per direction
/// for its whole life, each block ending in a sync flush.
final class SPDYHeaderCompressor {
    private var stream = z_stream()
    private var ready = false

    init() throws(SPDYProtocolError) {
        guard labnode_deflate_init(&stream, Z_DEFAULT_COMPRESSION) == Z_OK else {
            throw SPDYProtocolError(description: "deflateInit failed")
        }
        let status = SPDYDictionary.bytes.withUnsafeBufferPointer {
            deflateSetDictionary(&stream, $0.baseAddress, uInt($0.count))
        }
        guard status == Z_OK else { throw SPDYProtocolError(description: "deflateSetDictionary failed: \(status)") }
        ready = true
    }

    deinit { if ready { deflateEnd(&stream) } }

    func compress(_ headers: [String: String]) -> [UInt8] {
        var plain = ByteBuffer()
        plain.writeInteger(UInt32(headers.count))
        for (name, value) in headers.sorted(by: { $0.key < $1.key }) {
            plain.writeInteger(UInt32(name.utf8.count))
            plain.writeString(name.lowercased())
            plain.writeInteger(UInt32(value.utf8.count))
            plain.writeString(value)
        }
        var input = Array(plain.readableBytesView)
        var output: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 1024)
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(inBuf.count)
            repeat {
                chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(outBuf.count)
                    _ = deflate(&stream, Z_SYNC_FLUSH)
                }
                output += chunk[0..<(chunk.count - Int(stream.avail_out))]
            } while stream.avail_out == 0
            stream.next_in = nil
        }
        return output
    }
}

final class SPDYHeaderDecompressor {
    private var stream = z_stream()
    private var ready = false
    /// A decompressed block larger than this ends the connection (a zip bomb, or garbage).
    static let maxBlock = 256 * 1024

    init() throws(SPDYProtocolError) {
        guard labnode_inflate_init(&stream) == Z_OK else { throw SPDYProtocolError(description: "inflateInit failed") }
        ready = true
    }

    deinit { if ready { inflateEnd(&stream) } }

    func decompress(_ block: [UInt8]) throws(SPDYProtocolError) -> [String: String] {
        if block.isEmpty { return [:] }
        var input = block
        var plain: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        var failure: String?
        input.withUnsafeMutableBufferPointer { inBuf in
            stream.next_in = inBuf.baseAddress
            stream.avail_in = uInt(inBuf.count)
            while failure == nil {
                var status: Int32 = Z_OK
                chunk.withUnsafeMutableBufferPointer { outBuf in
                    stream.next_out = outBuf.baseAddress
                    stream.avail_out = uInt(outBuf.count)
                    status = inflate(&stream, Z_SYNC_FLUSH)
                }
                if status == Z_NEED_DICT {
                    status = SPDYDictionary.bytes.withUnsafeBufferPointer {
                        inflateSetDictionary(&stream, $0.baseAddress, uInt($0.count))
                    }
                    if status != Z_OK { failure = "header block uses an unknown dictionary" }
                    continue
                }
                plain += chunk[0..<(chunk.count - Int(stream.avail_out))]
                if status != Z_OK && status != Z_BUF_ERROR && status != Z_STREAM_END {
                    failure = "header block does not inflate (zlib \(status))"
                } else if plain.count > Self.maxBlock {
                    failure = "header block larger than \(Self.maxBlock) bytes"
                } else if stream.avail_in == 0 && stream.avail_out != 0 {
                    break
                } else if status == Z_BUF_ERROR && stream.avail_out != 0 {
                    break
                }
            }
            stream.next_in = nil
        }
        if let failure { throw SPDYProtocolError(description: failure) }
        return try Self.parseBlock(plain)
    }

    static func parseBlock(_ plain: [UInt8]) throws(SPDYProtocolError) -> [String: String] {
        var buffer = ByteBuffer(bytes: plain)
        guard let count = buffer.readInteger(as: UInt32.self) else { throw SPDYProtocolError(description: "header block is truncated") }
        var headers: [String: String] = [:]
        for _ in 0..<count {
            guard let nameLength = buffer.readInteger(as: UInt32.self), let name = buffer.readString(length: Int(nameLength)),
                  let valueLength = buffer.readInteger(as: UInt32.self), let value = buffer.readString(length: Int(valueLength))
            else { throw SPDYProtocolError(description: "header block is truncated") }
            // Several values of one name are NUL-separated; streams here only use the first.
            headers[name.lowercased()] = String(value.split(separator: "\0", omittingEmptySubsequences: false).first ?? "")
        }
        return headers
    }
}

/// Splits a byte stream into frames. Feed it whatever arrives; it keeps partial frames.
final class SPDYFrameParser {
    private var pending = ByteBuffer()
    private let headers: SPDYHeaderDecompressor
    /// kubectl's frames are at most 32 KiB; the format allows 16 MiB, which this bounds.
    static let maxFrame = 1 << 24

    init() throws(SPDYProtocolError) {
        headers = try SPDYHeaderDecompressor()
    }

    func append(_ bytes: inout ByteBuffer) {
        pending.writeBuffer(&bytes)
    }

    /// The next complete frame, nil when more bytes are needed.
    func next() throws(SPDYProtocolError) -> SPDYFrame? {
        guard pending.readableBytes >= 8,
              let word = pending.getInteger(at: pending.readerIndex, as: UInt32.self),
              let flagsAndLength = pending.getInteger(at: pending.readerIndex + 4, as: UInt32.self)
        else { return nil }
        let flags = UInt8(flagsAndLength >> 24)
        let length = Int(flagsAndLength & 0x00ff_ffff)
        guard pending.readableBytes >= 8 + length else { return nil }
        pending.moveReaderIndex(forwardBy: 8)
        guard var payload = pending.readSlice(length: length) else { return nil }
        if pending.readableBytes == 0 { pending.clear() } else if pending.readerIndex > 1 << 16 { pending.discardReadBytes() }

        if word & 0x8000_0000 == 0 {
            return .data(streamID: word, fin: flags & SPDYFrame.flagFin != 0, payload: payload)
        }
        let version = UInt16((word >> 16) & 0x7fff)
        guard version == SPDYFrame.version else { throw SPDYProtocolError(description: "SPDY version \(version) is not 3") }
        let type = UInt16(word & 0xffff)
        func u32() throws(SPDYProtocolError) -> UInt32 {
            guard let v = payload.readInteger(as: UInt32.self) else { throw SPDYProtocolError(description: "control frame type \(type) is truncated") }
            return v
        }
        switch type {
        case 1:
            let id = try u32() & 0x7fff_ffff
            let associated = try u32() & 0x7fff_ffff
            guard payload.readBytes(length: 2) != nil else { throw SPDYProtocolError(description: "SYN_STREAM is truncated") }
            let block = try headers.decompress(payload.readBytes(length: payload.readableBytes) ?? [])
            return .synStream(streamID: id, associatedID: associated, fin: flags & SPDYFrame.flagFin != 0, headers: block)
        case 2:
            let id = try u32() & 0x7fff_ffff
            let block = try headers.decompress(payload.readBytes(length: payload.readableBytes) ?? [])
            return .synReply(streamID: id, fin: flags & SPDYFrame.flagFin != 0, headers: block)
        case 3:
            return .rstStream(streamID: try u32() & 0x7fff_ffff, status: try u32())
        case 4:
            return .settings
        case 6:
            return .ping(id: try u32())
        case 7:
            return .goAway(lastGoodStreamID: try u32() & 0x7fff_ffff, status: try u32())
        case 8:
            let id = try u32() & 0x7fff_ffff
            let block = try headers.decompress(payload.readBytes(length: payload.readableBytes) ?? [])
            return .headers(streamID: id, headers: block)
        case 9:
            return .windowUpdate(streamID: try u32() & 0x7fff_ffff, delta: try u32() & 0x7fff_ffff)
        default:
            // Unknown control frames are ignored (SPDY/3 2.2.1); return the next one.
            return try next()
        }
    }
}

/// Serializes frames; header blocks share one compression context, so one writer per
/// connection and frames leave in the order they were encoded.
final class SPDYFrameWriter {
    private let headers: SPDYHeaderCompressor

    init() throws(SPDYProtocolError) {
        headers = try SPDYHeaderCompressor()
    }

    func encode(_ frame: SPDYFrame, into out: inout ByteBuffer) {
        func control(_ type: UInt16, flags: UInt8, _ body: [UInt8]) {
            out.writeInteger(UInt16(0x8000) | SPDYFrame.version)
            out.writeInteger(type)
            out.writeInteger(UInt32(flags) << 24 | UInt32(body.count))
            out.writeBytes(body)
        }
        func be(_ v: UInt32) -> [UInt8] {
            [UInt8(v >> 24), UInt8(truncatingIfNeeded: v >> 16), UInt8(truncatingIfNeeded: v >> 8), UInt8(truncatingIfNeeded: v)]
        }
        switch frame {
        case .synStream(let id, let associated, let fin, let h):
            control(1, flags: fin ? SPDYFrame.flagFin : 0, be(id) + be(associated) + [0, 0] + headers.compress(h))
        case .synReply(let id, let fin, let h):
            control(2, flags: fin ? SPDYFrame.flagFin : 0, be(id) + headers.compress(h))
        case .rstStream(let id, let status):
            control(3, flags: 0, be(id) + be(status))
        case .settings:
            control(4, flags: 0, be(0))
        case .ping(let id):
            control(6, flags: 0, be(id))
        case .goAway(let last, let status):
            control(7, flags: 0, be(last) + be(status))
        case .headers(let id, let h):
            control(8, flags: 0, be(id) + headers.compress(h))
        case .windowUpdate(let id, let delta):
            control(9, flags: 0, be(id) + be(delta))
        case .data(let id, let fin, let payload):
            out.writeInteger(id & 0x7fff_ffff)
            out.writeInteger(UInt32(fin ? SPDYFrame.flagFin : 0) << 24 | UInt32(payload.readableBytes))
            var p = payload
            out.writeBuffer(&p)
        }
    }
}
