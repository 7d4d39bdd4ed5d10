/// A table printed with aligned columns; cells may carry a colour that does not count
/// towards the width.
struct TextTable {
    /// One cell: its text and an optional colour.
    struct Cell {
        let text: String
        let colour: Terminal.Colour?
        init(_ text: String, _ colour: Terminal.Colour? = nil) { self.text = text; self.colour = colour }
    }

    let headers: [String]
    private(set) var rows: [[Cell]] = []

    init(headers: [String]) { self.headers = headers }

    mutating func append(_ row: [Cell]) { rows.append(row) }
    mutating func append(_ row: [String]) { rows.append(row.map { Cell($0) }) }

    /// The table as lines; the last column is not padded.
    func render(on terminal: Terminal) -> String {
        let columns = max(headers.count, rows.map(\.count).max() ?? 0)
        var widths = (0..<columns).map { $0 < headers.count ? headers[$0].count : 0 }
        for row in rows {
            for (index, cell) in row.enumerated() {
                widths[index] = max(widths[index], cell.text.count)
            }
        }
        func line(_ cells: [Cell]) -> String {
            cells.enumerated().map { index, cell in
                let padding = index == cells.count - 1 ? "" : String(repeating: " ", count: widths[index] - cell.text.count)
                return terminal.paint(cell.text, cell.colour) + padding
            }.joined(separator: "  ")
        }
        var lines: [String] = []
        if !headers.isEmpty { lines.append(line(headers.map { Cell($0, .bold) })) }
        lines += rows.map(line)
        return lines.joined(separator: "\n")
    }
}

/// Human-readable sizes and durations for tables.
enum Format {
    /// `4096` -> `4 KiB`; exact bytes when not a whole unit.
    static func bytes(_ value: Int) -> String {
        let units = ["B", "KiB", "MiB", "GiB", "TiB"]
        var amount = value, unit = 0
        while amount >= 1024, amount % 1024 == 0, unit < units.count - 1 { amount /= 1024; unit += 1 }
        return "\(amount) \(units[unit])"
    }

    /// `75` -> `1m15s`.
    static func age(seconds: Double) -> String {
        let total = max(0, Int(seconds))
        if total < 60 { return "\(total)s" }
        if total < 3600 { return "\(total / 60)m\(pad(total % 60))s" }
        if total < 86400 { return "\(total / 3600)h\(pad(total / 60 % 60))m" }
        return "\(total / 86400)d\(pad(total / 3600 % 24))h"
    }

    private static func pad(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
}
