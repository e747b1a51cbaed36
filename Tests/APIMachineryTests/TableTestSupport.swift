@testable import APIMachinery

/// 2026-11-30T03:15:18Z, the creation time of most fixtures.
let tableFixtureCreated = 1_796_008_518.0
/// Five minutes after `tableFixtureCreated`.
let tableFixtureNow = tableFixtureCreated + 300

enum TableFixtureError: Error, CustomStringConvertible {
    case unknownResource(String)
    case notATable(String)

    var description: String {
        switch self {
        case .unknownResource(let name): return "no resource \(name) in Resources.all"
        case .notATable(let why): return "result is not a Table: \(why)"
        }
    }
}

func tableResource(_ resource: String, group: String = "") throws -> ResourceInfo {
    let version = "v1"
    guard let info = Resources.find(group: group, version: version, resource: resource) else {
        throw TableFixtureError.unknownResource(group.isEmpty ? resource : "\(resource).\(group)")
    }
    return info
}

/// The cells of the single row produced for `objectJSON`.
func tableCells(_ resource: ResourceInfo, _ objectJSON: String, now: Double = tableFixtureNow) throws -> [JSON] {
    let object = try JSON.parse(objectJSON)
    let table = TablePrinter.table(resource: resource, objects: [object], listResourceVersion: "7",
                                   continueToken: nil, includeObject: .none, now: now)
    guard let rows = table["rows"]?.arrayValue, rows.count == 1, let cells = rows[0]["cells"]?.arrayValue else {
        throw TableFixtureError.notATable(table.text)
    }
    return cells
}

/// The column names of the resource's table, in order.
func tableColumnNames(_ resource: ResourceInfo) -> [String] {
    let table = TablePrinter.table(resource: resource, objects: [], listResourceVersion: nil, continueToken: nil,
                                   includeObject: .metadata, now: 0)
    return (table["columnDefinitions"]?.arrayValue ?? []).compactMap { $0["name"]?.stringValue }
}

/// Cells as strings (integers printed), for compact table-driven expectations.
func tableCellTexts(_ cells: [JSON]) -> [String] {
    cells.map { cell in
        switch cell {
        case .string(let s): return s
        case .int(let i): return String(i)
        default: return cell.text
        }
    }
}
