// handoff-example-server: an HTTP/1.1 keep-alive "hello" server that takes its listener from
// `Listeners.inherited()` (sockctl run, systemd) or opens its own, and says READY=1 / STOPPING=1
// through `ServiceNotify`. It is the server the Handoff tests upgrade.
//
//   handoff-example-server [--fd-name NAME] [--listen ADDR:PORT [--reuseport]]
//                          [--behavior-file PATH] [--linger-close 200ms]
//
// Signals: SIGTERM/SIGINT drain (stop accepting, answer each open connection's next request with
// "Connection: close", then exit 0); SIGUSR1 crashes on purpose (abort) once no connection is open.
// --behavior-file (read at start): "ok", "crash" (abort at start), "never-ready" (serve, never READY=1).
#if canImport(Glibc)
import Glibc
#endif
import CLinuxUAPI
import Foundation
import Handoff

func fail(_ message: String) -> Never {
    FileHandle.standardError.write(Data("handoff-example-server: \(message)\n".utf8))
    exit(2)
}

var args = Array(CommandLine.arguments.dropFirst())
func option(_ name: String) -> String? {
    guard let i = args.firstIndex(of: name) else { return nil }
    guard i + 1 < args.count else { fail("\(name) needs a value") }
    return args[i + 1]
}
let behavior = option("--behavior-file").flatMap { try? String(contentsOfFile: $0, encoding: .utf8) }?
    .trimmingCharacters(in: .whitespacesAndNewlines) ?? "ok"
if behavior == "crash" { FileHandle.standardError.write(Data("handoff-example-server: crashing at start (behavior file)\n".utf8)); abort() }
let lingerClose = try option("--linger-close").map { try DurationParser.parse($0, option: "--linger-close") } ?? 0

let listenFd: Int32
do {
    if let own = option("--listen") {
        var spec = try ListenerSpec.parse("tcp://" + own)
        spec.reusePort = args.contains("--reuseport")
        listenFd = try Listener.open(spec).fd
    } else {
        let inherited = try Listeners.inherited()
        if let name = option("--fd-name") { listenFd = try inherited.one(name) }
        else if let first = inherited.all.first { listenFd = first.fd }
        else { fail("no listener: run me under `sockctl run --listen ...` or give --listen ADDR:PORT") }
    }
    try Listener.setNonBlocking(listenFd, true)
} catch { fail("\(error)") }

final class State {
    let lock = NSLock()
    var open = 0
    var draining = false
    var drainStarted = 0.0
}
let state = State()

func now() -> Double {
    var ts = timespec(); clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) / 1e9
}

func serve(_ fd: Int32) {
    defer {
        close(fd)
        state.lock.lock(); state.open -= 1; state.lock.unlock()
    }
    var tv = timeval(tv_sec: 0, tv_usec: 100_000)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
    var pending = [UInt8]()
    var buf = [UInt8](repeating: 0, count: 4096)
    let body = "hello from \(getpid())\n"
    while true {
        if let end = pending.firstIndex(of: 0x0a).flatMap({ _ in findHeaderEnd(pending) }) {
            let head = String(decoding: pending[..<end], as: UTF8.self).lowercased()
            pending.removeFirst(end + 4)
            state.lock.lock(); let draining = state.draining; state.lock.unlock()
            let closing = draining || head.contains("connection: close")
            let response = "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: \(body.utf8.count)\r\n" +
                (closing ? "Connection: close\r\n" : "") + "\r\n" + body
            let bytes = Array(response.utf8)
            var off = 0
            while off < bytes.count {
                let n = bytes[off...].withUnsafeBufferPointer { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                if n <= 0 { return }
                off += n
            }
            if closing { shutdown(fd, Int32(SHUT_WR)); drainInput(fd); return }
            continue
        }
        let n = read(fd, &buf, buf.count)
        if n == 0 { return }
        if n < 0 {
            if errno == EAGAIN || errno == EINTR {
                // Idle keep-alive connection: when draining for over a second, let it go.
                state.lock.lock(); let idleTooLong = state.draining && pending.isEmpty && now() - state.drainStarted > 1; state.lock.unlock()
                if idleTooLong { shutdown(fd, Int32(SHUT_WR)); drainInput(fd); return }
                continue
            }
            return
        }
        pending += buf[0..<n]
    }
}

/// After our FIN, read until the client closes so that close() never turns into a RST.
func drainInput(_ fd: Int32) {
    var buf = [UInt8](repeating: 0, count: 1024)
    let deadline = now() + 1
    while now() < deadline {
        let n = read(fd, &buf, buf.count)
        if n == 0 { return }
        if n < 0 && errno != EAGAIN && errno != EINTR { return }
    }
}

func findHeaderEnd(_ b: [UInt8]) -> Int? {
    guard b.count >= 4 else { return nil }
    for i in 0...(b.count - 4) where b[i] == 13 && b[i + 1] == 10 && b[i + 2] == 13 && b[i + 3] == 10 { return i }
    return nil
}

var sigs: [Int32] = [SIGTERM, SIGINT, SIGUSR1]
let sigFd = sockctl_signal_pipe(&sigs, 3)
signal(SIGPIPE, SIG_IGN)

if behavior != "never-ready" { _ = try? ServiceNotify.ready(status: "serving") }
var accepting = true
var crashWhenIdle = false
while true {
    var fds = [pollfd(fd: sigFd, events: Int16(POLLIN), revents: 0),
               pollfd(fd: accepting ? listenFd : -1, events: Int16(POLLIN), revents: 0)]
    _ = poll(&fds, 2, 50)
    if fds[0].revents != 0 {
        var b = [UInt8](repeating: 0, count: 16)
        let n = read(sigFd, &b, 16)
        for i in 0..<max(0, n) {
            if Int32(b[i]) == SIGUSR1 { crashWhenIdle = true; accepting = false }
            else if accepting || !state.draining {
                accepting = false
                state.lock.lock(); state.draining = true; state.drainStarted = now(); state.lock.unlock()
                _ = try? ServiceNotify.stopping()
            }
        }
    }
    if accepting && fds[1].revents != 0 {
        while true {
            let c = sockctl_accept4(listenFd, Int32(SOCK_CLOEXEC.rawValue))
            if c < 0 { break }
            state.lock.lock(); state.open += 1; state.lock.unlock()
            Thread { serve(c) }.start()
        }
    }
    if !accepting {
        state.lock.lock(); let open = state.open; let started = state.drainStarted; state.lock.unlock()
        if open == 0 {
            if crashWhenIdle { FileHandle.standardError.write(Data("handoff-example-server: crashing on purpose (SIGUSR1)\n".utf8)); abort() }
            if now() - started >= lingerClose { close(listenFd); exit(0) }
        }
    }
}
