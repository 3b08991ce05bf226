import Foundation
import TestSupport
import SockDiag

/// Drives the real `sockctl` binary (`sockctl list --json`) and reduces its NDJSON to the same
/// comparison keys `key(of:)` builds for in-process sockets and `ssRows` builds for ss's rows.
enum CLIList {
    /// `<package root>/.build/debug/sockctl`, found from this source file's path.
    static var binary: URL {
        URL(fileURLWithPath: #filePath)
            .deletingLastPathComponent()   // FilterEquivalenceTests
            .deletingLastPathComponent()   // Tests
            .deletingLastPathComponent()   // package root
            .appendingPathComponent(".build/debug/sockctl")
    }

    typealias Result = CommandResult

    /// Runs the binary with `args` (TestSupport's runner reads stdout and stderr concurrently).
    static func run(_ args: [String]) throws -> Result { runCommand([binary.path] + args) }

    /// One NDJSON object reduced to what the comparison needs.
    struct Row {
        var key: String
        var netns: String?
        var uid: UInt32?
        var cookie: UInt64?
    }

    struct ParseError: Error, CustomStringConvertible {
        var description: String
    }

    /// JSON state names (`SocketState.name`) -> ss State column names (`SocketState.shortName`).
    static let shortStateNames: [String: String] = {
        var m: [String: String] = [:]
        for raw in UInt8(1)...13 {
            let s = SocketState(rawValue: raw)
            m[s.name] = s.shortName
        }
        return m
    }()

    static func endpoint(_ address: Any?, _ port: Any?) -> String {
        let a = (address as? String).map { InetAddress($0)?.description ?? $0 } ?? "?"
        return "\(a):\((port as? NSNumber)?.uint16Value ?? 0)"
    }

    /// Parses `sockctl list --json` output: one object per line, keyed like `key(of:)`.
    static func rows(_ ndjson: String) throws -> [Row] {
        try ndjson.split(separator: "\n").map { line in
            guard let obj = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw ParseError(description: "not a JSON object: \(line)")
            }
            guard let proto = obj["protocol"] as? String, let stateName = obj["state"] as? String,
                  let state = shortStateNames[stateName] else {
                throw ParseError(description: "protocol/state missing or unknown: \(line)")
            }
            let inode = (obj["inode"] as? NSNumber)?.uint32Value
            let key: String
            switch proto {
            case "stream", "dgram", "seqpacket":
                guard let inode else { throw ParseError(description: "unix socket without inode: \(line)") }
                let netid = proto == "stream" ? "u_str" : proto == "dgram" ? "u_dgr" : "u_seq"
                key = "\(netid)|\(state)|\(inode)"
            default:
                key = "\(proto)|\(state)|\(endpoint(obj["src"], obj["sport"]))|\(endpoint(obj["dst"], obj["dport"]))"
            }
            return Row(key: key, netns: obj["netns"] as? String, uid: (obj["uid"] as? NSNumber)?.uint32Value,
                       cookie: (obj["cookie"] as? NSNumber)?.uint64Value)
        }
    }
}
