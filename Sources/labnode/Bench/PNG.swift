/// A minimal PNG writer for the benchmark's chart: 8-bit palette images, compressed with
/// deflate's fixed Huffman codes and run-length matches only (a chart is mostly runs of one
/// colour), so it needs no zlib binding.
enum PNG {
    /// `pixels` holds one palette index per pixel, row by row.
    static func encode(width: Int, height: Int, palette: [(UInt8, UInt8, UInt8)], pixels: [UInt8]) -> [UInt8] {
        var raw: [UInt8] = []
        raw.reserveCapacity((width + 1) * height)
        for y in 0..<height {
            raw.append(0)  // filter type 0: the row as it is
            raw += pixels[(y * width)..<((y + 1) * width)]
        }
        var header: [UInt8] = []
        header += bigEndian(UInt32(width)) + bigEndian(UInt32(height))
        header += [8, 3, 0, 0, 0]  // bit depth 8, palette colour, deflate, adaptive filters, no interlace
        return [0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]
            + chunk("IHDR", header)
            + chunk("PLTE", palette.flatMap { [$0.0, $0.1, $0.2] })
            + chunk("IDAT", zlib(raw))
            + chunk("IEND", [])
    }

    static func chunk(_ type: String, _ data: [UInt8]) -> [UInt8] {
        let body = Array(type.utf8) + data
        return bigEndian(UInt32(data.count)) + body + bigEndian(crc32(body))
    }

    static func bigEndian(_ v: UInt32) -> [UInt8] { [UInt8(v >> 24), UInt8(v >> 16 & 0xFF), UInt8(v >> 8 & 0xFF), UInt8(v & 0xFF)] }

    static let crcTable: [UInt32] = (0..<256).map { n in
        (0..<8).reduce(UInt32(n)) { c, _ in c & 1 == 1 ? 0xEDB8_8320 ^ (c >> 1) : c >> 1 }
    }

    static func crc32(_ data: [UInt8]) -> UInt32 {
        ~data.reduce(~UInt32(0)) { c, b in crcTable[Int((c ^ UInt32(b)) & 0xFF)] ^ (c >> 8) }
    }

    static func adler32(_ data: [UInt8]) -> UInt32 {
        var a: UInt32 = 1, b: UInt32 = 0
        for byte in data {
            a = (a + UInt32(byte)) % 65521
            b = (b + a) % 65521
        }
        return b << 16 | a
    }

    /// A zlib stream of one fixed-Huffman deflate block (RFC 1950, 1951 section 3.2.6): each
    /// byte as a literal, and a run of the same byte as a match at distance 1.
    static func zlib(_ data: [UInt8]) -> [UInt8] {
        var out = BitWriter()
        out.bits(1, 1)  // the final block
        out.bits(1, 2)  // fixed Huffman codes
        var i = 0
        while i < data.count {
            out.literal(Int(data[i]))
            var run = 0
            while i + 1 + run < data.count, data[i + 1 + run] == data[i], run < 258 { run += 1 }
            i += 1
            if run >= 3 {
                out.length(run)
                out.code(0, 5)  // distance code 0: distance 1
                i += run
            }
        }
        out.literal(256)  // end of block
        out.flush()
        return [0x78, 0x01] + out.bytes + bigEndian(adler32(data))
    }

    struct BitWriter {
        var bytes: [UInt8] = []
        var buffer: UInt32 = 0
        var count = 0

        /// Plain values go in least significant bit first.
        mutating func bits(_ value: UInt32, _ n: Int) {
            buffer |= value << count
            count += n
            while count >= 8 {
                bytes.append(UInt8(buffer & 0xFF))
                buffer >>= 8
                count -= 8
            }
        }

        /// Huffman codes go in most significant bit first.
        mutating func code(_ value: UInt32, _ n: Int) {
            var reversed: UInt32 = 0
            for bit in 0..<n { reversed |= (value >> bit & 1) << (n - 1 - bit) }
            bits(reversed, n)
        }

        /// The fixed literal/length code (RFC 1951 section 3.2.6).
        mutating func literal(_ symbol: Int) {
            switch symbol {
            case 0...143: code(UInt32(0x30 + symbol), 8)
            case 144...255: code(UInt32(0x190 + symbol - 144), 9)
            case 256...279: code(UInt32(symbol - 256), 7)
            default: code(UInt32(0xC0 + symbol - 280), 8)
            }
        }

        static let lengthBase = [3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 15, 17, 19, 23, 27, 31, 35, 43, 51, 59, 67, 83, 99, 115, 131, 163, 195, 227, 258]
        static let lengthExtra = [0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4, 5, 5, 5, 5, 0]

        /// A match length, 3...258: its symbol, then its extra bits.
        mutating func length(_ n: Int) {
            let i = Self.lengthBase.lastIndex { $0 <= n } ?? 0
            literal(257 + i)
            if Self.lengthExtra[i] > 0 { bits(UInt32(n - Self.lengthBase[i]), Self.lengthExtra[i]) }
        }

        mutating func flush() {
            if count > 0 { bytes.append(UInt8(buffer & 0xFF)) }
            buffer = 0
            count = 0
        }
    }
}
