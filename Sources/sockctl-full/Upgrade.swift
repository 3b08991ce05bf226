import ArgumentParser
import SockCtlCLIBase
import Foundation
import Handoff

/// `sockctl upgrade NAME`: ask a `sockctl run` supervisor for the next generation and wait for it.
struct Upgrade: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "upgrade",
        abstract: FullVerb.upgrade.abstract,
        discussion: "Exit status: 0 upgraded, 2 no such supervisor, 4 the upgrade failed or was refused (the old generation keeps serving)."
    )

    @OptionGroup var supervisor: SupervisorAddress

    @Flag(help: "Print the reply as JSON.")
    var json = false

    func run() throws {
        let reply = try callSupervisor(path: supervisor.path, command: "upgrade", name: supervisor.name)
        if json {
            print(String(decoding: try JSONEncoder().encode(reply), as: UTF8.self))
        } else if let u = reply.upgrade {
            print("\(reply.message) (generation \(u.generation), pid \(u.pid), ready in \(u.readyMs) ms, old gone \(u.drainMs) ms after the stop signal\(u.killedPids.isEmpty ? "" : ", SIGKILLed \(u.killedPids)"))")
        } else {
            print(reply.message)
        }
        if !reply.ok {
            if !json { FileHandle.standardError.write(Data("sockctl upgrade: \(reply.message)\n".utf8)) }
            throw ExitCode(4)
        }
    }
}

/// Call the control socket; a missing supervisor is a config error (2).
func callSupervisor(path: String, command: String, name: String) throws -> ControlProtocol.Reply {
    do {
        return try ControlProtocol.call(path: path, command: command)
    } catch let error as HandoffError {
        if case let .syscall(call, err, _, _) = error, call == "connect", err == ENOENT || err == ECONNREFUSED {
            FileHandle.standardError.write(Data("sockctl \(command): no supervisor named '\(name)' (\(path): \(String(cString: strerror(err)))); start one with `sockctl run --name \(name) ...`\n".utf8))
            throw ExitCode(2)
        }
        FileHandle.standardError.write(Data("sockctl \(command): \(error)\n".utf8))
        throw ExitCode(error.exitStatus)
    }
}
