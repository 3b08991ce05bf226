import Foundation
import Hummingbird
import Logging
import NIOCore
#if canImport(Glibc)
import Glibc
#endif

/// Where the control API listens and who may call it.
public enum APIEndpoint: Sendable, Equatable {
    /// A unix socket (mode 0600); callers are checked by SO_PEERCRED: root or the daemon's uid.
    case unix(path: String)
    /// TCP; every request needs `Authorization: Bearer TOKEN`.
    case tcp(host: String, port: Int, token: String)

    /// `unix:///run/sockctl.sock`, `unix:/path`, `tcp://127.0.0.1:9090`.
    public static func parse(_ url: String, token: String?) throws -> APIEndpoint {
        if url.hasPrefix("unix://") { return .unix(path: String(url.dropFirst("unix://".count))) }
        if url.hasPrefix("unix:") { return .unix(path: String(url.dropFirst("unix:".count))) }
        if url.hasPrefix("tcp://") {
            let rest = url.dropFirst("tcp://".count)
            guard let colon = rest.lastIndex(of: ":"), let port = Int(rest[rest.index(after: colon)...]), (1...65535).contains(port) else {
                throw APIEndpointError("--api \(url): expected tcp://HOST:PORT")
            }
            guard let token, !token.isEmpty else {
                throw APIEndpointError("--api \(url): a TCP API needs a bearer token (--token-file FILE)")
            }
            var host = String(rest[..<colon])
            if host.hasPrefix("[") && host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
            return .tcp(host: host.isEmpty ? "127.0.0.1" : host, port: port, token: token)
        }
        throw APIEndpointError("--api \(url): expected unix:///PATH or tcp://HOST:PORT")
    }
}

public struct APIEndpointError: Error, CustomStringConvertible {
    public var description: String
    init(_ d: String) { description = d }
}

/// `struct ucred` (pid, uid, gid), what getsockopt(SO_PEERCRED) fills in for a unix socket's peer.
struct PeerCredentials {
    var pid: Int32 = 0
    var uid: UInt32 = 0
    var gid: UInt32 = 0
}

/// Request context that keeps the connection's channel, for the peer-credential check.
public struct DaemonRequestContext: RequestContext {
    public var coreContext: CoreRequestContextStorage
    public let channel: any Channel

    public init(source: ApplicationRequestContextSource) {
        coreContext = .init(source: source)
        channel = source.channel
    }

    public var maxUploadSize: Int { 1 << 20 }
}

/// Refuses requests from anyone but root or the daemon's own uid (unix socket), or without the
/// bearer token (TCP), with 401/403 and a JSON error, before any route runs.
struct AuthMiddleware: RouterMiddleware {
    typealias Context = DaemonRequestContext
    let endpoint: APIEndpoint

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws -> Response {
        switch endpoint {
        case .unix:
            guard let provider = context.channel as? SocketOptionProvider else {
                return ControlAPI.error(.forbidden, "cannot read the caller's credentials")
            }
            let cred: PeerCredentials
            do {
                cred = try await provider.unsafeGetSocketOption(level: SocketOptionLevel(SOL_SOCKET), name: SocketOptionName(SO_PEERCRED)).get()
            } catch {
                return ControlAPI.error(.forbidden, "cannot read the caller's credentials: \(error)")
            }
            guard cred.uid == 0 || cred.uid == getuid() else {
                return ControlAPI.error(.forbidden, "uid \(cred.uid) may not use this API (root or uid \(getuid()) only)")
            }
        case .tcp(_, _, let token):
            let header = request.headers[.authorization] ?? ""
            guard header == "Bearer \(token)" else {
                return ControlAPI.error(.unauthorized, header.isEmpty ? "missing bearer token" : "wrong bearer token",
                                        extra: [.wwwAuthenticate: "Bearer"])
            }
        }
        return try await next(request, context)
    }
}

/// The HTTP routes of the control API.
public enum ControlAPI {
    struct KillBody: Decodable {
        var filter: String?
        var netns: NetnsField?
        var dryRun: Bool?
        var max: Int?
        var rule: String?
    }

    /// `netns`: a string (`"all"` or one name) or a list of names/paths/pids.
    enum NetnsField: Decodable {
        case one(String), many([String])
        init(from decoder: Decoder) throws {
            let c = try decoder.singleValueContainer()
            if let s = try? c.decode(String.self) { self = .one(s); return }
            self = .many(try c.decode([String].self))
        }
        var list: [String] { switch self { case .one(let s): return [s]; case .many(let l): return l } }
    }

    static func json(_ status: HTTPResponse.Status, _ object: Any) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        var buf = ByteBuffer(bytes: data)
        buf.writeString("\n")
        return Response(status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: buf))
    }

    static func error(_ status: HTTPResponse.Status, _ message: String, extra: HTTPFields = [:], fields: [String: Any] = [:]) -> Response {
        var obj: [String: Any] = ["error": message, "status": Int(status.code)]
        for (k, v) in fields { obj[k] = v }
        var r = json(status, obj)
        for f in extra { r.headers.append(f) }
        return r
    }

    static func ruleJSON(_ r: Rule, auditAll: Bool) -> [String: Any] {
        var o: [String: Any] = ["name": r.name, "on": r.trigger.description, "netns": r.netns.description,
                                "action": auditAll ? "audit" : r.action.rawValue, "line": r.line]
        if let i = r.interface { o["interface"] = i }
        func sel(_ s: Selection) -> [String: Any] {
            var m: [String: Any] = [:]
            if let f = s.filter { m["filter"] = f }
            if !s.uids.isEmpty { m["uid"] = s.uids.map { $0.lowerBound == $0.upperBound ? "\($0.lowerBound)" : "\($0.lowerBound)-\($0.upperBound)" } }
            if let c = s.cgroup { m["cgroup"] = c }
            if s.loopback { m["loopback"] = true }
            return m
        }
        if !r.match.isEmpty { o["match"] = sel(r.match) }
        if !r.except.isEmpty { o["except"] = sel(r.except) }
        return o
    }

    public static func router(engine: PolicyEngine, endpoint: APIEndpoint) -> Router<DaemonRequestContext> {
        let router = Router(context: DaemonRequestContext.self)
        router.add(middleware: AuthMiddleware(endpoint: endpoint))

        router.get("/healthz") { _, _ -> Response in
            json(.ok, ["status": "ok", "rules": engine.policy.rules.count, "netns": engine.watchedNamespaces])
        }

        router.get("/metrics") { _, _ -> Response in
            Response(status: .ok, headers: [.contentType: "text/plain; version=0.0.4"],
                     body: .init(byteBuffer: ByteBuffer(bytes: engine.metrics.prometheusText())))
        }

        router.get("/v1/rules") { _, _ -> Response in
            let p = engine.policy
            return json(.ok, ["file": p.path, "audit": engine.options.auditAll,
                              "rules": p.rules.map { ruleJSON($0, auditAll: engine.options.auditAll) }])
        }

        router.post("/v1/reload") { _, _ -> Response in
            switch engine.reload() {
            case .success(let p): return json(.ok, ["status": "reloaded", "rules": p.rules.count])
            case .failure(let e):
                return error(.unprocessableContent, "policy rejected, previous policy still in force: \(e)",
                             fields: ["file": e.file, "line": e.line, "column": e.column, "reason": e.message])
            }
        }

        router.post("/v1/kill") { request, _ -> Response in
            var req = request
            let body: ByteBuffer
            do { body = try await req.collectBody(upTo: 1 << 20) } catch {
                return ControlAPI.error(.contentTooLarge, "request body over 1 MiB")
            }
            let parsed: KillBody
            do {
                parsed = try JSONDecoder().decode(KillBody.self, from: Data(buffer: body))
            } catch {
                return ControlAPI.error(.badRequest, "malformed JSON body: \(describe(error)) (expected {\"filter\": \"...\", \"netns\": [...], \"dryRun\": false, \"max\": N})")
            }
            if let m = parsed.max, m < 0 { return ControlAPI.error(.badRequest, "max must be 0 or more") }
            let kill = PolicyEngine.APIKill(filter: parsed.filter ?? "", netns: parsed.netns?.list ?? [],
                                            dryRun: parsed.dryRun ?? false, max: parsed.max, rule: parsed.rule)
            do {
                let records = try await Task.detached { try engine.apiKill(kill) }.value
                let destroyed = records.filter { $0.outcome == "destroyed" }.count
                let sockets = try records.map { try JSONSerialization.jsonObject(with: KillRecord.encoder.encode($0)) }
                return json(.ok, ["matched": records.count, "destroyed": destroyed, "dryRun": kill.dryRun || engine.options.auditAll,
                                  "sockets": sockets])
            } catch let e as PolicyEngine.APIError {
                switch e {
                case .badRequest(let m, let col): return ControlAPI.error(.badRequest, m, fields: col.map { ["column": $0] } ?? [:])
                case .notFound(let m): return ControlAPI.error(.notFound, m)
                case .conflict(let m): return ControlAPI.error(.conflict, m)
                case .failed(let m): return ControlAPI.error(.internalServerError, m)
                }
            }
        }

        router.get("/v1/events") { _, _ -> Response in
            let (_, stream) = engine.hub.subscribe()
            let body = ResponseBody { writer in
                try await writer.write(ByteBuffer(string: ": sockctl kill events\n\n"))
                for await r in stream {
                    if let r {
                        try await writer.write(ByteBuffer(string: "event: kill\ndata: \(r.json)\n\n"))
                    } else {
                        try await writer.write(ByteBuffer(string: ": keepalive\n\n"))
                    }
                }
                try await writer.finish(nil)
            }
            return Response(status: .ok, headers: [.contentType: "text/event-stream", .cacheControl: "no-cache"], body: body)
        }
        return router
    }

    static func describe(_ e: Error) -> String {
        switch e {
        case DecodingError.typeMismatch(_, let c), DecodingError.valueNotFound(_, let c):
            return "wrong type at '\(c.codingPath.map(\.stringValue).joined(separator: "."))'"
        case DecodingError.dataCorrupted(let c):
            return c.debugDescription
        case DecodingError.keyNotFound(let k, _):
            return "missing '\(k.stringValue)'"
        default:
            return "\(e)"
        }
    }
}
