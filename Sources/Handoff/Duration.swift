/// Durations on the command line: `30s`, `500ms`, `2m`, `1.5s`, `1h` (a bare number is seconds).
public enum DurationParser {
    public static func parse(_ text: String, option: String) throws -> Double {
        let units: [(String, Double)] = [("ms", 0.001), ("us", 0.000001), ("s", 1), ("m", 60), ("h", 3600)]
        var number = Substring(text)
        var scale = 1.0
        for (suffix, factor) in units where text.hasSuffix(suffix) {
            number = text.dropLast(suffix.count)
            scale = factor
            break
        }
        guard let value = Double(number), value >= 0, value.isFinite else {
            throw HandoffError.config("\(option): '\(text)' is not a duration (examples: 30s, 500ms, 2m)")
        }
        return value * scale
    }

    public static func format(_ seconds: Double) -> String {
        if seconds < 1 { return "\(Int((seconds * 1000).rounded()))ms" }
        var text = String(format: "%.2f", seconds)
        while text.hasSuffix("0") { text.removeLast() }
        if text.hasSuffix(".") { text.removeLast() }
        return text + "s"
    }
}

import Foundation
