import CoreMetrics
import Metrics
import Prometheus

/// The daemon's metrics, recorded through swift-metrics and exported as Prometheus text.
///
/// - `sockctl_sockets_destroyed_total{rule,netns,protocol}`
/// - `sockctl_audit_matches_total{rule,netns,protocol}` (audit: what would have been destroyed)
/// - `sockctl_destroy_errors_total{rule,netns}`
/// - `sockctl_event_to_kill_seconds` histogram: rtnetlink message received → destroys done
/// - `sockctl_policy_reloads_total{result="ok"|"failed"}`
public final class DaemonMetrics: Sendable {
    public let registry: PrometheusCollectorRegistry
    static let latencyLabel = "sockctl_event_to_kill_seconds"

    /// Creates the registry and installs it as the process's metrics backend (once per process).
    public init() {
        registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.durationHistogramBuckets[Self.latencyLabel] = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(20), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(5),
        ]
        MetricsSystem.bootstrap(factory)
        // Reload counters exist from the start so that a scrape shows them at 0.
        Counter(label: "sockctl_policy_reloads_total", dimensions: [("result", "ok")]).increment(by: 0)
        Counter(label: "sockctl_policy_reloads_total", dimensions: [("result", "failed")]).increment(by: 0)
    }

    public func destroyed(rule: String, netns: String, protocol p: String, count: Int, audit: Bool) {
        guard count > 0 else { return }
        Counter(label: audit ? "sockctl_audit_matches_total" : "sockctl_sockets_destroyed_total",
                dimensions: [("rule", rule), ("netns", netns), ("protocol", p)]).increment(by: count)
    }

    public func destroyErrors(rule: String, netns: String, count: Int) {
        guard count > 0 else { return }
        Counter(label: "sockctl_destroy_errors_total", dimensions: [("rule", rule), ("netns", netns)]).increment(by: count)
    }

    public func eventToKill(nanoseconds: UInt64) {
        Metrics.Timer(label: Self.latencyLabel).recordNanoseconds(Int64(nanoseconds))
    }

    public func reload(ok: Bool) {
        Counter(label: "sockctl_policy_reloads_total", dimensions: [("result", ok ? "ok" : "failed")]).increment()
    }

    public func prometheusText() -> [UInt8] { registry.emitToBuffer() }
}
