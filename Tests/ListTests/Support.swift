import Foundation
import TestSupport
import Testing

/// Runs a command (stderr dropped), returns its exit status and standard output.
@discardableResult
func sh(_ args: [String], stdin: FileHandle? = nil) -> (status: Int32, out: String) { let r = runCommand(args, stdin: stdin); return (r.status, r.stdout) }

/// The sockctl binary built beside the tests.
let sockctlBinary: String = {
    let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
    return root.appendingPathComponent(".build/debug/sockctl").path
}()

/// ss's short state names for our JSON state names.
let ssStateName: [String: String] = [
    "established": "ESTAB", "listening": "LISTEN", "time-wait": "TIME-WAIT", "closed": "UNCONN",
    "syn-sent": "SYN-SENT", "syn-recv": "SYN-RECV", "close-wait": "CLOSE-WAIT", "fin-wait-1": "FIN-WAIT-1",
    "fin-wait-2": "FIN-WAIT-2", "last-ack": "LAST-ACK", "closing": "CLOSING",
]

/// `addr:port` as ss prints it (`[v6]:port`, `*` for port 0).
func endpoint(_ addr: String?, _ port: Int?) -> String {
    let a = addr ?? "*"
    let host = a.contains(":") ? "[\(a)]" : a
    return "\(host):\(port.map { $0 == 0 ? "*" : String($0) } ?? "*")"
}

/// Parses `sockctl list --json` output into objects.
func jsonLines(_ text: String) throws -> [[String: Any]] {
    try text.split(separator: "\n").map { line in
        let obj = try JSONSerialization.jsonObject(with: Data(line.utf8))
        return try #require(obj as? [String: Any], "not an object: \(line)")
    }
}
