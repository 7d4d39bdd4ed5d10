import DaxPin
import Glibc

/// How output looks on this stdout: colour only on a terminal (and never with `NO_COLOR`).
struct Terminal {
    /// Whether stdout is a terminal.
    let isInteractive: Bool
    /// Whether to emit ANSI colours.
    let usesColour: Bool

    /// The terminal standard output is attached to.
    static let standardOutput: Terminal = {
        let interactive = Syscalls.isTerminal(STDOUT_FILENO)
        let term = Syscalls.environment("TERM") ?? ""
        let colour = interactive && Syscalls.environment("NO_COLOR") == nil && term != "dumb"
        return Terminal(isInteractive: interactive, usesColour: colour)
    }()

    /// ANSI colours used for states.
    enum Colour: String {
        case green = "32", yellow = "33", red = "31", bold = "1", dim = "2"
    }

    /// `text` wrapped in `colour` when colours are on.
    func paint(_ text: String, _ colour: Colour?) -> String {
        guard usesColour, let colour else { return text }
        return "\u{1B}[\(colour.rawValue)m\(text)\u{1B}[0m"
    }

    /// Moves the cursor home and clears the screen (for `--watch` on a terminal).
    func clearScreen() {
        print("\u{1B}[H\u{1B}[2J", terminator: "")
    }
}

/// Writes a line to standard error.
func printError(_ message: String) {
    try? Syscalls.writeAll(STDERR_FILENO, Array((message + "\n").utf8))
}
