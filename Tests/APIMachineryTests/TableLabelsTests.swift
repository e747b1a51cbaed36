import Testing
@testable import APIMachinery

@Suite("Table label and selector formatting")
struct TableLabelsTests {
    @Test("label maps print sorted key=value pairs, <none> when empty", arguments: [
        (#"{"app":"nginx"}"#, "app=nginx"),
        (#"{"tier":"web","app":"nginx"}"#, "app=nginx,tier=web"),
        (#"{}"#, "<none>"),
        (#"null"#, "<none>"),
    ])
    func labelMap(json: String, expected: String) throws {
        #expect(TablePrinter.Labels.format(try JSON.parse(json)) == expected)
    }

    @Test("label selectors print in selector syntax, requirements sorted by key", arguments: [
        (#"{"matchLabels":{"app":"nginx"}}"#, "app=nginx"),
        (#"{"matchLabels":{"tier":"web","app":"nginx"}}"#, "app=nginx,tier=web"),
        (#"{"matchExpressions":[{"key":"env","operator":"In","values":["prod","dev"]}]}"#, "env in (dev,prod)"),
        (#"{"matchExpressions":[{"key":"env","operator":"NotIn","values":["qa"]}]}"#, "env notin (qa)"),
        (#"{"matchExpressions":[{"key":"gpu","operator":"Exists"}]}"#, "gpu"),
        (#"{"matchExpressions":[{"key":"legacy","operator":"DoesNotExist"}]}"#, "!legacy"),
        (#"{"matchLabels":{"tier":"web"},"matchExpressions":[{"key":"app","operator":"In","values":["b","a"]},{"key":"zone","operator":"Exists"}]}"#,
         "app in (a,b),tier=web,zone"),
        (#"{"matchLabels":{"example.com/role":"db"}}"#, "example.com/role=db"),
        (#"{}"#, ""),
        (#"null"#, ""),
    ])
    func selector(json: String, expected: String) throws {
        #expect(TablePrinter.Labels.selectorString(try JSON.parse(json)) == expected)
    }

    @Test("selectors kube-apiserver cannot build are reported as invalid", arguments: [
        #"{"matchExpressions":[{"key":"env","operator":"Equals","values":["x"]}]}"#,
        #"{"matchExpressions":[{"key":"env","operator":"In","values":[]}]}"#,
        #"{"matchExpressions":[{"key":"env","operator":"Exists","values":["x"]}]}"#,
        #"{"matchLabels":{"bad key":"x"}}"#,
        #"{"matchLabels":{"app":"-leading-dash"}}"#,
        #"{"matchLabels":{"UPPER.example.com/x":"y"}}"#,
    ])
    func invalidSelector(json: String) throws {
        let selector = try JSON.parse(json)
        #expect(TablePrinter.Labels.selectorString(selector) == nil)
        #expect(TablePrinter.Labels.formatSelector(selector) == "<error>")
    }

    @Test("formatSelector prints <none> for a selector that selects by nothing")
    func formatSelectorEmpty() throws {
        #expect(TablePrinter.Labels.formatSelector(try JSON.parse("{}")) == "<none>")
        #expect(TablePrinter.Labels.formatSelector(nil) == "<none>")
        #expect(TablePrinter.Labels.formatSelector(try JSON.parse(#"{"matchLabels":{"app":"x"}}"#)) == "app=x")
    }
}
