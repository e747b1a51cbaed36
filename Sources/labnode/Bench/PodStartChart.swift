import Foundation

/// The pod-start latency distribution as a PNG: each side's samples sorted, drawn as a
/// cumulative step line (x: milliseconds, y: share of pods started by then).
enum PodStartChart {
    static let width = 720, height = 400
    static let left = 70, right = 690, top = 60, bottom = 340
    // Palette indices.
    static let white: UInt8 = 0, ink: UInt8 = 1, grid: UInt8 = 2, labnodeColour: UInt8 = 3, peerColour: UInt8 = 4
    static let palette: [(UInt8, UInt8, UInt8)] = [(255, 255, 255), (40, 40, 40), (220, 220, 220), (31, 119, 180), (255, 127, 14)]

    static func png(labnode: [Double], peer: [Double], peerName: String) -> [UInt8] {
        var c = Canvas(width: width, height: height)
        c.text("POD CREATE -> RUNNING, \(labnode.count) PODS ONE AFTER ANOTHER", x: left, y: 14, colour: ink)
        let all = labnode + peer
        guard let maxValue = all.max(), maxValue > 0 else {
            c.text("NO SAMPLES: THE POD BENCHMARK FAILED", x: left, y: 180, colour: ink)
            return c.png
        }
        let step = niceStep(maxValue / 5)
        let xMax = (maxValue / step).rounded(.up) * step
        func x(_ ms: Double) -> Int { left + Int((ms / xMax * Double(right - left)).rounded()) }
        func y(_ share: Double) -> Int { bottom - Int((share * Double(bottom - top)).rounded()) }

        for tick in stride(from: 0, through: xMax + step / 2, by: step) {
            c.line(x0: x(tick), y0: top, x1: x(tick), y1: bottom, colour: grid)
            let label = tick == tick.rounded() ? String(Int(tick)) : String(format: "%.1f", tick)
            c.text(label, x: x(tick) - label.count * 4, y: bottom + 8, colour: ink)
        }
        for share in [0.0, 0.5, 1.0] {
            c.line(x0: left, y0: y(share), x1: right, y1: y(share), colour: grid)
            let label = "\(Int(share * 100))%"
            c.text(label, x: left - 10 - label.count * 8, y: y(share) - 5, colour: ink)
        }
        c.line(x0: left, y0: bottom, x1: right, y1: bottom, colour: ink)
        c.line(x0: left, y0: top, x1: left, y1: bottom, colour: ink)
        c.text("MILLISECONDS", x: (left + right) / 2 - 48, y: bottom + 26, colour: ink)

        for (samples, colour) in [(peer, peerColour), (labnode, labnodeColour)] {
            let sorted = samples.sorted()
            var previous = (x: x(0), y: y(0))
            for (i, ms) in sorted.enumerated() {
                let point = (x: x(ms), y: y(Double(i + 1) / Double(sorted.count)))
                c.thickLine(x0: previous.x, y0: previous.y, x1: point.x, y1: previous.y, colour: colour)
                c.thickLine(x0: point.x, y0: previous.y, x1: point.x, y1: point.y, colour: colour)
                c.fill(x: point.x - 3, y: point.y - 3, w: 7, h: 7, colour: colour)
                previous = point
            }
        }
        c.fill(x: left, y: 36, w: 12, h: 10, colour: labnodeColour)
        c.text("LABNODE: API REQUEST TO RUNNING", x: left + 18, y: 36, colour: ink)
        c.fill(x: left + 300, y: 36, w: 12, h: 10, colour: peerColour)
        c.text(peerName, x: left + 318, y: 36, colour: ink)
        return c.png
    }

    /// 1, 2 or 5 times a power of ten, at least `raw`.
    static func niceStep(_ raw: Double) -> Double {
        let magnitude = pow(10, floor(log10(raw)))
        return [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= raw } ?? 10 * magnitude
    }
}

/// Palette-indexed pixels with the few drawing operations the chart needs.
struct Canvas {
    let width: Int, height: Int
    var pixels: [UInt8]

    init(width: Int, height: Int) {
        self.width = width
        self.height = height
        pixels = [UInt8](repeating: 0, count: width * height)
    }

    var png: [UInt8] { PNG.encode(width: width, height: height, palette: PodStartChart.palette, pixels: pixels) }

    mutating func fill(x: Int, y: Int, w: Int, h: Int, colour: UInt8) {
        for py in max(0, y)..<min(height, y + h) where w > 0 {
            for px in max(0, x)..<min(width, x + w) { pixels[py * width + px] = colour }
        }
    }

    /// Horizontal and vertical lines are all a chart of steps needs.
    mutating func line(x0: Int, y0: Int, x1: Int, y1: Int, colour: UInt8) {
        fill(x: min(x0, x1), y: min(y0, y1), w: abs(x1 - x0) + 1, h: abs(y1 - y0) + 1, colour: colour)
    }

    mutating func thickLine(x0: Int, y0: Int, x1: Int, y1: Int, colour: UInt8) {
        fill(x: min(x0, x1) - 1, y: min(y0, y1) - 1, w: abs(x1 - x0) + 3, h: abs(y1 - y0) + 3, colour: colour)
    }

    /// Upper-case text in a 3x5 font drawn at twice its size (8 pixels a character).
    mutating func text(_ s: String, x: Int, y: Int, colour: UInt8) {
        for (i, ch) in s.uppercased().enumerated() {
            let rows = Font.glyphs[ch] ?? Font.glyphs["?"] ?? []
            for (row, bits) in rows.enumerated() {
                for (col, bit) in bits.enumerated() where bit == "1" {
                    fill(x: x + i * 8 + col * 2, y: y + row * 2, w: 2, h: 2, colour: colour)
                }
            }
        }
    }
}

enum Font {
    /// Each glyph: five rows of three pixels.
    static let glyphs: [Character: [String]] = {
        let table: [(Character, String)] = [
            ("0", "111 101 101 101 111"), ("1", "010 110 010 010 111"), ("2", "111 001 111 100 111"), ("3", "111 001 111 001 111"),
            ("4", "101 101 111 001 001"), ("5", "111 100 111 001 111"), ("6", "111 100 111 101 111"), ("7", "111 001 001 010 010"),
            ("8", "111 101 111 101 111"), ("9", "111 101 111 001 111"), ("A", "010 101 111 101 101"), ("B", "110 101 110 101 110"),
            ("C", "011 100 100 100 011"), ("D", "110 101 101 101 110"), ("E", "111 100 110 100 111"), ("F", "111 100 110 100 100"),
            ("G", "011 100 101 101 011"), ("H", "101 101 111 101 101"), ("I", "111 010 010 010 111"), ("J", "001 001 001 101 010"),
            ("K", "101 101 110 101 101"), ("L", "100 100 100 100 111"), ("M", "101 111 111 101 101"), ("N", "110 101 101 101 101"),
            ("O", "010 101 101 101 010"), ("P", "110 101 110 100 100"), ("Q", "010 101 101 110 011"), ("R", "110 101 110 101 101"),
            ("S", "011 100 010 001 110"), ("T", "111 010 010 010 010"), ("U", "101 101 101 101 111"), ("V", "101 101 101 101 010"),
            ("W", "101 101 111 111 101"), ("X", "101 101 010 101 101"), ("Y", "101 101 010 010 010"), ("Z", "111 001 010 100 111"),
            (".", "000 000 000 000 010"), (",", "000 000 000 010 100"), (":", "000 010 000 010 000"), ("-", "000 000 111 000 000"),
            (">", "100 010 001 010 100"), ("/", "001 001 010 100 100"), ("%", "101 001 010 100 101"), ("(", "010 100 100 100 010"),
            (")", "010 001 001 001 010"), ("+", "000 010 111 010 000"), ("=", "000 111 000 111 000"), ("?", "111 001 010 000 010"),
            (" ", "000 000 000 000 000"),
        ]
        return Dictionary(uniqueKeysWithValues: table.map { ($0.0, $0.1.split(separator: " ").map(String.init)) })
    }()
}
