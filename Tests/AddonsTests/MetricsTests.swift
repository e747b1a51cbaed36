import NIOCore
import NIOPosix
import XCTest

@testable import Addons

/// The per-query counters and histograms: what /metrics shows for them, and that the prometheus plugin
/// keeps one series per label set whatever key it found it under.
final class MetricsTests: XCTestCase {
    func testQueryTableWritesCountersAndCumulativeBucketsAsTheTextFormat() {
        let table = QueryMetricsTable()
        let requests = table.counter("t_total", [("type", "A")], help: "Requests.")
        let responses = table.counter("t_total", [("type", "AAAA")], help: "Requests.")
        let a = table.histogram("t_seconds", [("zone", "."), ("type", "A")], bounds: [0.00025, 0.0005, 1], help: "Time.")
        let b = table.histogram("t_seconds", [("zone", "."), ("type", "AAAA")], bounds: [0.00025, 0.0005, 1], help: "Time.")
        let size = table.histogram("t_bytes", [("proto", "udp")], bounds: [0, 100, 200], help: "Size.")
        XCTAssertEqual(table.histogram("t_seconds", [("zone", "."), ("type", "A")], bounds: [0.00025, 0.0005, 1], help: "Time."), a,
                       "the same label set is the same series")
        let q = QueryMetricsTable.QuerySeries(requests: requests, responses: requests, duration: a, requestSize: size, responseSize: b)
        // Values exact in binary, so the sums print exactly.
        table.record(q, seconds: 0.0001220703125, requestSize: 40, responseSize: 2)
        table.record(q, seconds: 0.5, requestSize: 100, responseSize: 0.75)
        var other = q
        other.responses = responses
        table.record(other, seconds: 3, requestSize: 512, responseSize: 0.000244140625)
        var out: [UInt8] = []
        table.emit(into: &out)
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertEqual(text, """
            # HELP t_total Requests.
            # TYPE t_total counter
            t_total{type="A"} 5
            t_total{type="AAAA"} 1
            # HELP t_seconds Time.
            # TYPE t_seconds histogram
            t_seconds_bucket{zone=".",type="A",le="0.00025"} 1
            t_seconds_bucket{zone=".",type="A",le="0.0005"} 1
            t_seconds_bucket{zone=".",type="A",le="1"} 2
            t_seconds_bucket{zone=".",type="A",le="+Inf"} 3
            t_seconds_sum{zone=".",type="A"} 3.5001220703125
            t_seconds_count{zone=".",type="A"} 3
            t_seconds_bucket{zone=".",type="AAAA",le="0.00025"} 1
            t_seconds_bucket{zone=".",type="AAAA",le="0.0005"} 1
            t_seconds_bucket{zone=".",type="AAAA",le="1"} 2
            t_seconds_bucket{zone=".",type="AAAA",le="+Inf"} 3
            t_seconds_sum{zone=".",type="AAAA"} 2.750244140625
            t_seconds_count{zone=".",type="AAAA"} 3
            # HELP t_bytes Size.
            # TYPE t_bytes histogram
            t_bytes_bucket{proto="udp",le="0"} 0
            t_bytes_bucket{proto="udp",le="100"} 2
            t_bytes_bucket{proto="udp",le="200"} 2
            t_bytes_bucket{proto="udp",le="+Inf"} 3
            t_bytes_sum{proto="udp"} 652
            t_bytes_count{proto="udp"} 3

            """)
    }

    func testLabelValuesAreEscaped() {
        let table = QueryMetricsTable()
        let s = table.histogram("x", [("zone", "a\"b\\c\nd")], bounds: [1], help: "X.")
        let c = table.counter("y", [("zone", "a\"b\\c\nd")], help: "Y.")
        table.record(.init(requests: c, responses: c, duration: s, requestSize: s, responseSize: s), seconds: 1, requestSize: 1, responseSize: 1)
        var out: [UInt8] = []
        table.emit(into: &out)
        let text = String(decoding: out, as: UTF8.self)
        XCTAssertTrue(text.contains(#"x_count{zone="a\"b\\c\nd"} 3"#), text)
        XCTAssertTrue(text.contains(#"y{zone="a\"b\\c\nd"} 2"#), text)
    }

    /// UDP and TCP queries of one type share the duration series (its labels have no proto)
    /// and have their own size series; the metrics page lists each series once.
    func testPrometheusPluginKeepsOneSeriesPerLabelSet() throws {
        let metrics = DNSMetrics()
        let group = MultiThreadedEventLoopGroup.singleton
        let plugin = PrometheusPlugin(address: "127.0.0.1:0", metrics: metrics, shared: SharedPlugins(group: group), zones: [.root],
                                      serverLabel: "dns://:53")
        var m = DNSMessage()
        m.questions = [DNSQuestion(name: "a.example.", type: .a)]
        for transport in [DNSTransport.udp, .tcp, .udp] {
            let request = DNSRequest(message: m, question: m.questions[0], transport: transport, size: 40, eventLoop: group.next())
            plugin.written(request, DNSResponse(message: request.reply(), plugin: "hosts"), size: 56, duration: .microseconds(300))
        }
        let text = String(decoding: metrics.exposition(), as: UTF8.self)
        let lines = text.split(separator: "\n")
        XCTAssertEqual(lines.filter { $0.hasPrefix("coredns_dns_request_duration_seconds_count{") },
                       [#"coredns_dns_request_duration_seconds_count{server="dns://:53",zone=".",view="",type="A"} 3"#])
        XCTAssertEqual(lines.filter { $0.hasPrefix("coredns_dns_request_duration_seconds_bucket{") && $0.contains(#"le="0.0005""#) },
                       [#"coredns_dns_request_duration_seconds_bucket{server="dns://:53",zone=".",view="",type="A",le="0.0005"} 3"#])
        XCTAssertEqual(Set(lines.filter { $0.hasPrefix("coredns_dns_response_size_bytes_count{") }),
                       [#"coredns_dns_response_size_bytes_count{server="dns://:53",zone=".",view="",proto="udp"} 2"#,
                        #"coredns_dns_response_size_bytes_count{server="dns://:53",zone=".",view="",proto="tcp"} 1"#])
        XCTAssertEqual(lines.filter { $0 == "# TYPE coredns_dns_request_size_bytes histogram" }.count, 1)
        XCTAssertTrue(text.contains(#"coredns_dns_requests_total{server="dns://:53",zone=".",view="",proto="tcp",family="1",type="A"} 1"#), text)
        XCTAssertEqual(lines.filter { $0.hasPrefix("coredns_dns_responses_total{") },
                       [#"coredns_dns_responses_total{server="dns://:53",zone=".",view="",rcode="NOERROR",plugin="hosts"} 3"#])
        XCTAssertEqual(lines.filter { $0 == "# TYPE coredns_dns_responses_total counter" }.count, 1)
    }
}
