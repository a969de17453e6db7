//! Unit tests of the template engine.

use super::*;
use crate::event::EnrichedEvent;

fn event() -> EnrichedEvent {
    EnrichedEvent::from_json_str(
        r#"{"metadata":{"name":"api.1","namespace":"prod","uid":"u-1","resourceVersion":"7",
            "creationTimestamp":"2026-11-23T10:00:00Z"},
          "involvedObject":{"kind":"Pod","namespace":"prod","name":"api-7f","uid":"p-1",
            "apiVersion":"v1","labels":{"team":"sre","app":"api","zone":"a"},
            "annotations":{"x/y":"z"},
            "ownerReferences":[{"apiVersion":"apps/v1","kind":"ReplicaSet","name":"api-rs","uid":"r-1","controller":true}],
            "deleted":false},
          "reason":"BackOff","message":"Back-off restarting <x> & \"y\"",
          "source":{"component":"kubelet","host":"node-1"},
          "firstTimestamp":"2026-11-23T10:00:01Z","lastTimestamp":"2026-11-23T10:05:00Z",
          "count":3,"type":"Warning","eventTime":null,
          "reportingComponent":"kubelet","reportingInstance":"node-1","clusterName":"gs"}"#,
    )
    .expect("test event")
}

fn series_event() -> EnrichedEvent {
    EnrichedEvent::from_json_str(
        r#"{"metadata":{"name":"e"},"involvedObject":{"kind":"Pod"},
          "eventTime":"2026-11-23T10:00:02.764451Z","action":"Binding",
          "series":{"count":2,"lastObservedTime":"2026-11-23T10:01:02.764451Z"}}"#,
    )
    .expect("series event")
}

fn render(src: &str) -> String {
    let ev = event();
    match Template::parse(src) {
        Ok(t) => t
            .render_to_string(ev.view())
            .unwrap_or_else(|e| format!("RENDER ERROR: {e}")),
        Err(e) => format!("PARSE ERROR: {e}"),
    }
}

fn render_with(ev: &EnrichedEvent, src: &str) -> String {
    Template::parse(src)
        .expect("parses")
        .render_to_string(ev.view())
        .unwrap_or_else(|e| format!("RENDER ERROR: {e}"))
}

fn parse_err(src: &str) -> TemplateError {
    match Template::parse(src) {
        Ok(_) => panic!("{src:?} should not parse"),
        Err(e) => e,
    }
}

#[test]
fn literal_fast_path() {
    let t = Template::parse("plain text, no actions").expect("parses");
    assert_eq!(t.as_literal(), Some("plain text, no actions"));
    assert_eq!(t.source(), "plain text, no actions");
    assert!(
        Template::parse("{{ .Reason }}")
            .expect("parses")
            .as_literal()
            .is_none()
    );
    assert_eq!(render("a {{/* gone */}} b"), "a  b");
}

#[test]
fn fields_of_the_event() {
    assert_eq!(
        render("{{ .InvolvedObject.Name }}/{{ .Namespace }}/{{ .Name }}"),
        "api-7f/prod/api.1"
    );
    assert_eq!(
        render("{{ .Source.Component }}@{{ .Source.Host }}"),
        "kubelet@node-1"
    );
    assert_eq!(
        render("{{ .Count }} {{ .Type }} {{ .ClusterName }}"),
        "3 Warning gs"
    );
    assert_eq!(render("[{{ .Kind }}][{{ .APIVersion }}]"), "[][]");
    assert_eq!(render("{{ .ReportingController }}"), "kubelet");
    assert_eq!(render("{{ .InvolvedObject.Labels.team }}"), "sre");
    assert_eq!(render("{{ .InvolvedObject.Labels.nope }}"), "<no value>");
    assert_eq!(render("{{ .Labels.app }}"), "<no value>");
    assert_eq!(
        render("{{ .InvolvedObject.Labels }}"),
        "map[app:api team:sre zone:a]"
    );
    assert_eq!(render("{{ .Labels }}"), "map[]");
    assert_eq!(render("{{ .EventTime }}"), "0001-01-01 00:00:00 +0000 UTC");
    assert_eq!(
        render("{{ .FirstTimestamp }}"),
        "2026-11-23 10:00:01 +0000 UTC"
    );
    assert_eq!(
        render("{{ .FirstTimestamp.Format \"2006-01-02T15:04:05Z07:00\" }}"),
        "2026-11-23T10:00:01Z"
    );
    assert_eq!(
        render("{{ .LastTimestamp.Unix }} {{ .EventTime.IsZero }}"),
        "1795428300 true"
    );
    assert_eq!(
        render("{{ .GetTimestampMs }} {{ .GetTimestampISO8601 }}"),
        "1795428001000 2026-11-23T10:00:01.000Z"
    );
    assert_eq!(
        render("{{ .Series }}|{{ .Related }}|{{ .DeletionTimestamp }}"),
        "nil|nil|<nil>"
    );
    assert_eq!(render("{{ .InvolvedObject.Deleted }}"), "false");
    assert_eq!(
        render("{{ range .InvolvedObject.OwnerReferences }}{{ .Kind }}/{{ .Name }}{{ end }}"),
        "ReplicaSet/api-rs"
    );
    assert_eq!(render("{{ printf \"%v\" .Source }}"), "{kubelet node-1}");
    assert_eq!(
        render("{{ .Source }}"),
        "&EventSource{Component:kubelet,Host:node-1,}"
    );
}

#[test]
fn series_and_event_time() {
    let ev = series_event();
    assert_eq!(
        render_with(&ev, "{{ .EventTime }}"),
        "2026-11-23 10:00:02.764451 +0000 UTC"
    );
    assert_eq!(render_with(&ev, "{{ .Series.Count }}"), "2");
    assert_eq!(
        render_with(&ev, "{{ with .Series }}{{ . }}{{ end }}"),
        "&EventSeries{Count:2,LastObservedTime:2026-11-23 10:01:02.764451 +0000 UTC,}"
    );
    assert_eq!(render_with(&ev, "{{ .GetTimestampMs }}"), "1795428002764");
    // The delivery id counts occurrences the events.k8s.io way too (series.count).
    let id = render_with(&ev, "{{ .GetDeliveryID }}");
    assert_eq!(id, format!("{}/2", ev.view().uid()));
    assert_eq!(
        render_with(&ev, "{{ .Series | toJson }}"),
        r#"{"count":2,"lastObservedTime":"2026-11-23T10:01:02.764451Z"}"#
    );
    let e = event();
    assert!(
        render_with(&e, "{{ .Series.Count }}")
            .contains("nil pointer evaluating *v1.EventSeries.Count")
    );
}

#[test]
fn trim_markers() {
    assert_eq!(render("a  {{- .Type -}}  b"), "aWarningb");
    assert_eq!(render("a\n\t{{- .Type }}\n"), "aWarning\n");
    assert_eq!(render("{{ .Type -}}\n\n  x"), "Warningx");
    assert_eq!(render("a\n{{- /* c */ -}}\nb"), "ab");
    // "-3" is a number, not a trim marker.
    assert_eq!(render("{{-3}}"), "-3");
    assert_eq!(render("x {{- 3 -}} y"), "x3y");
}

#[test]
fn else_if_chains() {
    let t = "{{ if eq .Reason \"A\" }}a{{ else if eq .Reason \"BackOff\" }}b{{ else if true }}c{{ else }}d{{ end }}";
    assert_eq!(render(t), "b");
    assert_eq!(render("{{ if .Labels }}x{{ else }}y{{ end }}"), "y");
    assert_eq!(
        render("{{ with .Source.Host }}[{{ . }}]{{ else }}-{{ end }}"),
        "[node-1]"
    );
    assert_eq!(
        render("{{ with .Action }}[{{ . }}]{{ else }}-{{ end }}"),
        "-"
    );
    assert_eq!(
        render("{{ with .Action }}1{{ else with .Reason }}{{ . }}{{ end }}"),
        "BackOff"
    );
    assert!(
        parse_err("{{ if true }}x{{ else }}y{{ else }}z{{ end }}")
            .message
            .contains("expected end")
    );
}

#[test]
fn variables_and_scoping() {
    assert_eq!(
        render("{{ $n := .InvolvedObject.Name }}{{ $n }}-{{ $n | len }}"),
        "api-7f-6"
    );
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x = 2 }}{{ end }}{{ $x }}"),
        "2"
    );
    assert_eq!(
        render("{{ $x := 1 }}{{ if true }}{{ $x := 2 }}{{ $x }}{{ end }}{{ $x }}"),
        "21"
    );
    assert_eq!(
        render("{{ with .Source }}{{ $.Reason }}:{{ .Component }}{{ end }}"),
        "BackOff:kubelet"
    );
    assert_eq!(
        render(
            "{{ range $i, $o := .InvolvedObject.OwnerReferences }}{{ $i }}={{ $o.Name }}{{ end }}"
        ),
        "0=api-rs"
    );
    let e = parse_err("{{ if true }}{{ $y := 1 }}{{ end }}{{ $y }}");
    assert!(e.message.contains("undefined variable \"$y\""), "{e}");
    assert!(
        parse_err("{{ $z = 1 }}")
            .message
            .contains("undefined variable")
    );
    // `$` may be reassigned; then nothing is assumed about it.
    assert_eq!(render("{{ $ = \"s\" }}{{ $ }}"), "s");
}

#[test]
fn range_over_maps_lists_and_else() {
    assert_eq!(
        render("{{ range $k, $v := .InvolvedObject.Labels }}{{ $k }}={{ $v }};{{ end }}"),
        "app=api;team=sre;zone=a;"
    );
    assert_eq!(
        render("{{ range .InvolvedObject.Labels }}[{{ . }}]{{ end }}"),
        "[api][sre][a]"
    );
    assert_eq!(
        render("{{ range .Labels }}x{{ else }}none{{ end }}"),
        "none"
    );
    assert_eq!(
        render("{{ range $i, $e := list \"a\" \"b\" }}{{ $i }}{{ $e }}{{ end }}"),
        "0a1b"
    );
    assert_eq!(
        render("{{ range (dict \"b\" 2 \"a\" 1) }}{{ . }}{{ end }}"),
        "12"
    );
    assert_eq!(
        render(
            "{{ range list 1 2 3 4 }}{{ if eq . 2 }}{{ continue }}{{ end }}{{ if eq . 4 }}{{ break }}{{ end }}{{ . }}{{ end }}"
        ),
        "13"
    );
    assert!(parse_err("{{ break }}").message.contains("outside"));
    assert!(render("{{ range 5 }}{{ end }}").contains("range can't iterate over 5"));
}

#[test]
fn printf_and_print() {
    assert_eq!(
        render("{{ printf \"%s/%s\" .Namespace .InvolvedObject.Name }}"),
        "prod/api-7f"
    );
    assert_eq!(render("{{ printf \"%q\" .Reason }}"), "\"BackOff\"");
    assert_eq!(
        render("{{ printf \"%d|%5d|%-4d|%03d\" .Count .Count .Count .Count }}"),
        "3|    3|3   |003"
    );
    assert_eq!(
        render("{{ printf \"%%d events\" .Count }}"),
        "%d events%!(EXTRA int32=3)"
    );
    assert_eq!(
        render("{{ printf \"%x %t %v\" \"hi\" true 1.5 }}"),
        "6869 true 1.5"
    );
    assert_eq!(render("{{ printf \"%d\" .Reason }}"), "%!d(string=BackOff)");
    assert_eq!(render("{{ print 1 2 \"a\" 3 }}"), "1 2a3");
    assert_eq!(render("{{ println .Type 1 }}"), "Warning 1\n");
    assert_eq!(
        render("{{ printf \"%v\" .InvolvedObject.Labels.nope }}"),
        "<nil>"
    );
    assert_eq!(
        render("{{ printf \"%T %T\" .Count .InvolvedObject.Labels }}"),
        "int32 map[string]string"
    );
}

#[test]
fn builtins() {
    assert_eq!(render("{{ eq .Type \"Normal\" \"Warning\" }}"), "true");
    assert_eq!(
        render("{{ ne .Count 3 }} {{ lt 1 2 }} {{ ge 2.5 2.5 }} {{ gt \"b\" \"a\" }}"),
        "false true true true"
    );
    assert!(render("{{ eq .Count \"3\" }}").contains("incompatible types for comparison"));
    assert_eq!(render("{{ eq .Labels.x \"a\" }}"), "false");
    assert_eq!(
        render("{{ and 1 0 2 }} {{ or 0 \"\" \"x\" }} {{ not .Labels }}"),
        "0 x true"
    );
    assert_eq!(
        render("{{ and .Labels.x (index .Labels.x \"boom\") }}"),
        "<no value>"
    );
    assert_eq!(
        render("{{ len .InvolvedObject.Labels }} {{ len \"héllo\" }}"),
        "3 6"
    );
    assert_eq!(
        render("{{ index .InvolvedObject.Labels \"team\" }}|{{ index .Annotations \"x\" }}|"),
        "sre||"
    );
    assert_eq!(render("{{ index (list 1 (list 2 3)) 1 0 }}"), "2");
    assert!(render("{{ index (list 1) 5 }}").contains("index out of range"));
    assert_eq!(
        render("{{ html .Message }}"),
        "Back-off restarting &lt;x&gt; &amp; &#34;y&#34;"
    );
    assert_eq!(render("{{ js \"a'b<\" }}"), "a\\'b\\u003C");
    assert_eq!(render("{{ urlquery \"a b&c\" }}"), "a+b%26c");
    assert_eq!(
        render("{{ (list 1 2).x }}"),
        "RENDER ERROR: template: template:1:4: executing \"template\" at <(list 1 2).x>: can't evaluate field x in type []interface {}"
    );
}

#[test]
fn sprig_functions() {
    assert_eq!(
        render("{{ .Reason | kebabcase }} {{ .Reason | snakecase }} {{ \"a_b\" | camelcase }}"),
        "back-off back_off AB"
    );
    assert_eq!(
        render(
            "{{ default \"x\" .Action }} {{ .Labels.a | default \"y\" }} {{ coalesce .Action .Reason }}"
        ),
        "x y BackOff"
    );
    assert_eq!(
        render("{{ ternary \"w\" \"n\" (eq .Type \"Warning\") }}"),
        "w"
    );
    assert_eq!(
        render("{{ list .Reason .Type | join \",\" }}"),
        "BackOff,Warning"
    );
    assert_eq!(
        render("{{ .InvolvedObject.APIVersion | splitList \"/\" | last }}"),
        "v1"
    );
    assert_eq!(render("{{ (split \"/\" \"apps/v1\")._1 }}"), "v1");
    assert_eq!(
        render("{{ toJson (dict \"k\" .InvolvedObject.Kind \"n\" .Count) }}"),
        r#"{"k":"Pod","n":3}"#
    );
    assert_eq!(
        render("{{ toJson .Message }}"),
        r#""Back-off restarting \u003cx\u003e \u0026 \"y\"""#
    );
    assert_eq!(
        render("{{ toRawJson .Message }}"),
        r#""Back-off restarting <x> & \"y\"""#
    );
    assert_eq!(
        render("{{ toPrettyJson (dict \"a\" 1) }}"),
        "{\n  \"a\": 1\n}"
    );
    assert_eq!(render("{{ (fromJson \"{\\\"a\\\":[1,2]}\").a }}"), "[1 2]");
    assert_eq!(
        render(
            "{{ hasKey .InvolvedObject.Labels \"team\" }} {{ keys .InvolvedObject.Labels | sortAlpha | join \",\" }}"
        ),
        "true app,team,zone"
    );
    assert_eq!(
        render(
            "{{ $d := dict }}{{ $_ := set $d \"a\" 1 }}{{ $d.a }} {{ get $d \"a\" }} {{ hasKey $d \"b\" }}"
        ),
        "1 1 false"
    );
    assert_eq!(
        render(
            "{{ add (int .Count) 1 }} {{ sub 5 2 }} {{ mul 2 3 4 }} {{ div 7 2 }} {{ mod 7 2 }} {{ max 1 9 3 }} {{ add1 .Count }}"
        ),
        "4 3 24 3 1 9 4"
    );
    assert!(render("{{ div 1 0 }}").contains("integer divide by zero"));
    assert_eq!(
        render(
            "{{ .Message | trunc 8 }}|{{ .Message | abbrev 10 }}|{{ .Reason | upper }}|{{ .Reason | lower | quote }}|{{ .Reason | squote }}"
        ),
        "Back-off|Back-of...|BACKOFF|\"backoff\"|'BackOff'"
    );
    assert_eq!(
        render(
            "{{ \"  x \" | trim }}|{{ trimAll \"$\" \"$a$\" }}|{{ trimPrefix \"Back\" .Reason }}|{{ trimSuffix \"Off\" .Reason }}"
        ),
        "x|a|Off|Back"
    );
    assert_eq!(
        render(
            "{{ .Type | indent 2 }}|{{ .Type | nindent 1 }}|{{ repeat 3 \"ab\" }}|{{ substr 1 3 \"hello\" }}"
        ),
        "  Warning|\n Warning|ababab|el"
    );
    assert_eq!(
        render(
            "{{ regexMatch \"^Back\" .Reason }} {{ regexFind \"[0-9]+\" .InvolvedObject.Name }} {{ regexReplaceAll \"-(\\\\w+)$\" .InvolvedObject.Name \"_${1}\" }}"
        ),
        "true 7 api_7f"
    );
    assert_eq!(
        render(
            "{{ regexSplit \"-\" .InvolvedObject.Name -1 }} {{ regexFindAll \"[a-z]\" \"a1b2c\" 2 }}"
        ),
        "[api 7f] [a b]"
    );
    assert_eq!(
        render("{{ regexQuoteMeta \"a.b\" }} {{ regexMatch \"(\" \"x\" }}"),
        "a\\.b false"
    );
    assert_eq!(
        render("{{ .Reason | sha256sum | trunc 12 }} {{ \"abc\" | sha1sum }}"),
        "2296259be53e a9993e364706816aba3e25717850c26c9cd0d89d"
    );
    assert_eq!(
        render("{{ .Reason | b64enc }} {{ \"QmFja09mZg==\" | b64dec }}"),
        "QmFja09mZg== BackOff"
    );
    assert_eq!(
        render(
            "{{ list 3 1 3 | uniq }} {{ list \"b\" \"a\" | sortAlpha }} {{ list 1 2 3 | rest }} {{ list 1 2 | reverse }} {{ has 2 (list 1 2) }}"
        ),
        "[3 1] [a b] [2 3] [2 1] true"
    );
    assert_eq!(
        render(
            "{{ list 1 \"\" 0 2 | compact }} {{ without (list 1 2 3) 2 }} {{ append (list 1) 2 }} {{ prepend (list 1) 0 }}"
        ),
        "[1 2] [1 3] [1 2] [0 1]"
    );
    assert_eq!(
        render(
            "{{ empty .Action }} {{ empty .FirstTimestamp }} {{ toString .Count }} {{ atoi \"42\" }} {{ int64 \"7\" }} {{ float64 \"1.5\" }}"
        ),
        "true false 3 42 7 1.5"
    );
    assert_eq!(
        render(
            "{{ title \"hello world\" }} {{ untitle \"Hello\" }} {{ swapcase \"aB\" }} {{ initials \"Hello World\" }} {{ nospace \"a b  c\" }}"
        ),
        "Hello World hello Ab HW abc"
    );
    assert_eq!(
        render(
            "{{ replace \"-\" \"_\" .InvolvedObject.Name }} {{ contains \"off\" .Message }} {{ hasPrefix \"Back\" .Reason }} {{ hasSuffix \"Off\" .Reason }}"
        ),
        "api_7f true true true"
    );
    assert_eq!(
        render(
            "{{ cat \"a\" 1 nil \"b\" }} {{ plural \"one\" \"many\" 2 }} {{ wrapWith 3 \"|\" \"abcdef\" }}"
        ),
        "a 1 b many abc|def"
    );
    assert_eq!(
        render(
            "{{ .FirstTimestamp | date \"2006-01-02\" }} {{ unixEpoch .FirstTimestamp }} {{ duration \"90\" }}"
        ),
        "2026-11-23 1795428001 1m30s"
    );
    assert_eq!(
        render("{{ (toDate \"2006-01-02 15:04\" \"2026-01-02 03:04\").Unix }}"),
        "1767323040"
    );
    assert_eq!(
        render("{{ dateInZone \"15:04 MST\" .FirstTimestamp \"UTC\" }}"),
        "10:00 UTC"
    );
    assert_eq!(
        render("{{ typeOf .Count }} {{ kindOf .InvolvedObject.Labels }} {{ typeOf . }}"),
        "int32 map *main.EnhancedEvent"
    );
    assert_eq!(
        render(
            "{{ seq 3 }} {{ until 3 }} {{ dig \"a\" \"b\" \"def\" (dict \"a\" (dict \"b\" 1)) }}"
        ),
        "1 2 3 [0 1 2] 1"
    );
    assert!(render("{{ upper .Count }}").contains("expected string; got int32"));
}

#[test]
fn parse_errors_say_what_and_where() {
    let e = parse_err("{{ nosuchfunc .Reason }}");
    assert_eq!((e.line, e.column), (1, 4));
    assert!(e.message.contains("function \"nosuchfunc\" not defined"));
    assert!(e.to_string().starts_with("template: template:1:4: "));

    let e = parse_err("line1\n  {{ .NoSuchField }}");
    assert_eq!((e.line, e.column), (2, 6));
    assert!(
        e.message
            .contains("can't evaluate field NoSuchField in type *main.EnhancedEvent"),
        "{e}"
    );

    let e = parse_err("{{ .InvolvedObject.NoSuchField }}");
    assert!(
        e.message.contains("in type main.EnhancedObjectReference"),
        "{e}"
    );
    assert!(
        parse_err("{{ .Source.Nope }}")
            .message
            .contains("v1.EventSource")
    );
    assert!(
        parse_err("{{ with .Source }}{{ .Nope }}{{ end }}")
            .message
            .contains("v1.EventSource")
    );
    assert!(
        parse_err("{{ .Reason.Foo }}")
            .message
            .contains("in type string")
    );
    assert!(
        parse_err("{{ .FirstTimestamp.Nope }}")
            .message
            .contains("v1.Time")
    );
    assert!(
        parse_err("{{ if .Reason }}unterminated")
            .message
            .contains("unexpected EOF")
    );
    assert!(
        parse_err("{{ end }}")
            .message
            .contains("unexpected {{end}}")
    );
    assert!(parse_err("{{ .Reason ").message.contains("unclosed action"));
    assert!(
        parse_err("{{ \"abc }}")
            .message
            .contains("unterminated quoted string")
    );
    assert!(
        parse_err("{{ .Labels.my-key }}")
            .message
            .contains("bad character")
    );
    assert!(parse_err("{{ }}").message.contains("missing value"));
    assert!(
        parse_err("{{ .Reason | \"x\" }}")
            .message
            .contains("non executable command")
    );
    assert!(
        parse_err("{{ upper }}")
            .message
            .contains("wrong number of args for upper")
    );
    assert!(
        parse_err("{{ .FirstTimestamp.Format }}")
            .message
            .contains("wrong number of args for Format")
    );
    assert!(
        parse_err("{{ semver \"1.0\" }}")
            .message
            .contains("not supported")
    );
    assert!(
        parse_err("{{ (1 }}")
            .message
            .contains("unclosed left paren")
    );
    assert!(
        parse_err("{{/* x */ y }}")
            .message
            .contains("comment ends before closing delimiter")
    );
    // Fields of maps and of values of unknown type are not checked statically.
    assert_eq!(render("{{ .InvolvedObject.Labels.AnyKey }}"), "<no value>");
    assert!(
        render("{{ range list 1 }}{{ .Foo }}{{ end }}")
            .contains("can't evaluate field Foo in type int")
    );
}

#[test]
fn render_errors_are_go_like() {
    let ev = event();
    let t = Template::parse("x {{ .Reason | upper }} {{ index .InvolvedObject.Labels 1 }}")
        .expect("parses");
    let e = t.render_to_string(ev.view()).expect_err("fails");
    assert!(e.message.starts_with("template: template:1:"), "{e}");
    assert!(e.message.contains("error calling index"), "{e}");
}

#[test]
fn define_template_block() {
    assert_eq!(
        render(
            "{{ define \"k\" }}<{{ .Component }}>{{ end }}{{ template \"k\" .Source }}{{ block \"b\" .Type }}[{{ . }}]{{ end }}"
        ),
        "<kubelet>[Warning]"
    );
    assert!(render("{{ template \"nope\" }}").contains("no such template"));
    assert!(
        render("{{ define \"r\" }}{{ template \"r\" }}{{ end }}{{ template \"r\" }}")
            .contains("maximum template depth")
    );
}

#[test]
fn literals() {
    assert_eq!(render("{{ `raw {{ x }}` }}"), "raw {{ x }}");
    assert_eq!(render("{{ \"a\\tb\\u00e9\\x41\" }}"), "a\tbéA");
    assert_eq!(
        render("{{ 'a' }} {{ 0x1F }} {{ 1e3 }} {{ 1.5 }} {{ 1_000 }} {{ -2 }}"),
        "97 31 1000 1.5 1000 -2"
    );
    assert_eq!(
        render("{{ true }} {{ 1000000.0 }} {{ 0.00001 }}"),
        "true 1e+06 1e-05"
    );
    assert!(
        parse_err("{{ nil }}")
            .message
            .contains("nil is not a command")
    );
}

#[test]
fn garbage_never_panics() {
    let ev = event();
    let pieces = [
        "{{",
        "}}",
        "{{-",
        "-}}",
        " ",
        ".",
        "..",
        "$",
        "$x",
        ":=",
        "=",
        "|",
        "(",
        ")",
        "\"",
        "`",
        "'",
        "if",
        "else",
        "end",
        "range",
        "with",
        "define",
        "template",
        "block",
        "break",
        "continue",
        ".Reason",
        ".Labels.a",
        "printf",
        "\"%d\"",
        "index",
        "1",
        "-1",
        "1.5e",
        "0x",
        "nil",
        "/*",
        "*/",
        "é",
        "\u{0}",
        "\n",
        ",",
        "len",
        "slice",
        "and",
        "or",
        "not",
        "eq",
        "list",
        "dict",
    ];
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    for _ in 0..5000 {
        let mut src = String::new();
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        let n = (seed % 12) as usize + 1;
        for k in 0..n {
            let x = seed.rotate_left(k as u32 * 5);
            src.push_str(pieces[(x % pieces.len() as u64) as usize]);
            if x & 1 == 0 {
                src.push(' ');
            }
        }
        if let Ok(t) = Template::parse(&src) {
            let _ = t.render_to_string(ev.view());
        }
    }
    // Byte-level truncations of a real template.
    let full = "{{ if eq .Reason \"BackOff\" -}} {{ printf \"%s/%q\" .Namespace (.InvolvedObject.Labels.team | upper) }}{{ else }}{{ range $k, $v := .InvolvedObject.Labels }}{{ $k }}{{ end }}{{ end }}";
    for i in 0..=full.len() {
        if let Some(prefix) = full.get(..i)
            && let Ok(t) = Template::parse(prefix)
        {
            let _ = t.render_to_string(ev.view());
        }
    }
}

#[test]
fn template_is_send_sync_clone() {
    fn assert_traits<T: Send + Sync + Clone + std::fmt::Debug>() {}
    assert_traits::<Template>();
}

#[test]
fn deep_nesting_is_an_error_not_a_crash() {
    let deep_parens = format!("{{{{ {}1{} }}}}", "(".repeat(10_000), ")".repeat(10_000));
    assert!(parse_err(&deep_parens).message.contains("nesting"));
    let deep_ifs = format!(
        "{}x{}",
        "{{ if true }}".repeat(10_000),
        "{{ end }}".repeat(10_000)
    );
    assert!(parse_err(&deep_ifs).message.contains("nesting"));
    // 40 nested ifs in a template that calls itself: bounded at render time.
    let body = format!(
        "{}{{{{ template \"r\" . }}}}{}",
        "{{ if true }}".repeat(40),
        "{{ end }}".repeat(40)
    );
    let src = format!("{{{{ define \"r\" }}}}{body}{{{{ end }}}}{{{{ template \"r\" . }}}}");
    assert!(render(&src).contains("RENDER ERROR"));
}

/// An event whose `count` is Go's largest int32 (what a width taken from `.Count` sees).
fn huge_count_event() -> EnrichedEvent {
    EnrichedEvent::from_json_str(
        r#"{"metadata":{"name":"e","uid":"u"},"involvedObject":{"kind":"Pod"},"count":2147483647}"#,
    )
    .expect("event")
}

fn render_err(src: &str) -> String {
    let ev = event();
    let t = Template::parse(src).expect("parses");
    match t.render_to_string(ev.view()) {
        Ok(out) => panic!("{src:?} rendered {} bytes instead of failing", out.len()),
        Err(e) => e.message,
    }
}

#[test]
fn printf_widths_and_precisions_follow_gos_limits() {
    // Go: a width or precision argument beyond ±1e6 is refused.
    assert_eq!(
        render_with(&huge_count_event(), r#"{{ printf "%*d" .Count 1 }}"#),
        "%!(BADWIDTH)1"
    );
    assert_eq!(
        render_with(&huge_count_event(), r#"{{ printf "%.*d" .Count 1 }}"#),
        "%!(BADPREC)1"
    );
    assert_eq!(render(r#"{{ printf "%.*d" -1 42 }}"#), "%!(BADPREC)42");
    assert_eq!(render(r#"{{ printf "%*d" 4.0 42 }}"#), "%!(BADWIDTH)42");
    assert_eq!(render(r#"{{ printf "%*d" -4 42 }}"#), "42  ");
    assert_eq!(render(r#"{{ printf "%-*d|" 3 7 }}"#), "7  |");
    // Written out: a number that keeps growing past 1e6 is no width at all.
    assert_eq!(
        render(r#"{{ printf "%100000000000d" 42 }}"#),
        "%!(NOVERB)%!(EXTRA int=42)"
    );
    assert_eq!(
        render(r#"{{ printf "%.100000000000f" 1.5 }}"#),
        "%!(NOVERB)%!(EXTRA float64=1.5)"
    );
    // Up to the limit they work, and take no quadratic time.
    assert_eq!(render(r#"{{ printf "%*d" 1000000 1 }}"#).len(), 1_000_000);
    assert_eq!(render(r#"{{ printf "%.*d" 1000000 1 }}"#).len(), 1_000_000);
    // Precisions Rust's own formatter refuses (over 65535) print as Go prints them: the
    // double's exact digits, then zeros.
    let f = render(r#"{{ printf "%.70000f" 1.5 }}"#);
    assert_eq!(f.len(), 70_002);
    assert!(
        f.starts_with("1.5000") && f.ends_with("000"),
        "{}",
        &f[..10]
    );
    let f = render(r#"{{ printf "%.1200f" 0.1 }}"#);
    assert!(
        f.starts_with("0.1000000000000000055511151231257827021181583404541015625000"),
        "{}",
        &f[..60]
    );
    let e = render(r#"{{ printf "%.70000e" 1.5 }}"#);
    assert!(
        e.starts_with("1.5000") && e.ends_with("0e+00"),
        "{}",
        &e[..10]
    );
    assert_eq!(render(r#"{{ printf "%.70000g" 1.5 }}"#), "1.5");
    assert_eq!(render(r#"{{ printf "%.3000g" 0.1 }}"#).len(), 57);
}

#[test]
fn a_dict_cannot_contain_itself() {
    for src in [
        r#"{{ $d := dict }}{{ $_ := set $d "a" $d }}{{ toJson $d }}"#,
        r#"{{ $d := dict }}{{ $_ := set $d "l" (list 1 $d) }}{{ printf "%v" $d }}"#,
        r#"{{ $d := dict }}{{ $e := dict "d" $d }}{{ $_ := set $d "e" $e }}{{ toPrettyJson $d }}"#,
        r#"{{ $d := dict "x" 1 }}{{ $_ := merge $d (dict "y" $d) }}{{ deepEqual $d $d }}"#,
        r#"{{ $d := dict }}{{ $_ := mergeOverwrite $d (dict "y" (list $d)) }}{{ $d }}"#,
    ] {
        let msg = render_err(src);
        assert!(msg.contains("a dict cannot contain itself"), "{src}: {msg}");
    }
    // Sharing is not containing: the same dict twice in another one is fine.
    assert_eq!(
        render(r#"{{ $d := dict "k" 1 }}{{ toJson (dict "a" $d "b" (list $d)) }}"#),
        r#"{"a":{"k":1},"b":[{"k":1}]}"#
    );
}

#[test]
fn values_nested_too_deep_are_an_error_and_drop_without_recursion() {
    // Built by construction, and by mutation (each new dict stored in the previous one).
    let by_construction = r#"{{ $d := dict }}{{ range until N }}{{ $d = dict "a" $d }}{{ end }}"#;
    let by_mutation = r#"{{ $root := dict }}{{ $cur := $root }}{{ range until N }}{{ $n := dict }}{{ $_ := set $cur "a" $n }}{{ $cur = $n }}{{ end }}"#;
    let lists = r#"{{ $l := list }}{{ range until N }}{{ $l = list $l }}{{ end }}"#;
    for (build, var) in [
        (by_construction, "$d"),
        (by_mutation, "$root"),
        (lists, "$l"),
    ] {
        let build_n = |n: usize| build.replace('N', &n.to_string());
        let deep = build_n(2_000);
        for use_ in [
            "toJson",
            "toPrettyJson",
            "toString",
            "printf \"%v\"",
            "print",
        ] {
            let src = format!("{deep}{{{{ {use_} {var} }}}}");
            let msg = render_err(&src);
            assert!(msg.contains("nested deeper than 100"), "{use_}: {msg}");
        }
        // Two of them compared.
        let twice = format!("{deep}{{{{ $a := {var} }}}}{deep}{{{{ deepEqual $a {var} }}}}");
        let msg = render_err(&twice);
        assert!(msg.contains("nested deeper than 100"), "deepEqual: {msg}");
        // 60,000 deep, built and dropped, never printed: no stack overflow either.
        assert_eq!(render(&format!("{}ok", build_n(60_000))), "ok");
    }
    // Up to the bound, nesting prints.
    let nested = |n: usize| {
        format!(
            "{{{{ $l := 1 }}}}{{{{ range until {n} }}}}{{{{ $l = list $l }}}}{{{{ end }}}}{{{{ toJson $l }}}}"
        )
    };
    assert_eq!(
        render(&nested(100)),
        format!("{}1{}", "[".repeat(100), "]".repeat(100))
    );
    assert!(render_err(&nested(101)).contains("nested deeper than 100"));
}

#[test]
fn output_and_work_are_bounded() {
    for (src, bound) in [
        // Output.
        (
            r#"{{ range until 1000 }}{{ repeat 1000000 "x" }}{{ end }}"#,
            "larger than 8 MiB",
        ),
        (r#"{{ repeat 100000000 "x" }}"#, "larger than 8 MiB"),
        (
            r#"{{ $s := repeat 1000000 "x" }}{{ join "" (list $s $s $s $s $s $s $s $s $s) }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ $s := repeat 1000000 "x" }}{{ toJson (list $s $s $s $s $s $s $s $s $s $s) }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ $s := repeat 1000000 "x" }}{{ printf "%v%v%v%v%v%v%v%v%v" $s $s $s $s $s $s $s $s $s }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ $s := repeat 1000000 "x" }}{{ cat $s $s $s $s $s $s $s $s $s }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ replace "" (repeat 100000 "y") (repeat 100000 "x") }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ regexReplaceAll "x" (repeat 100000 "x") (repeat 1000 "y") }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ indent 1000000 (repeat 100 "\n") }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ wrapWith 1 (repeat 1000 "-") (repeat 100000 "x ") }}"#,
            "larger than 8 MiB",
        ),
        // Doubling a string: what it holds costs steps (one per 16 bytes) before it is 8 MiB.
        (
            r#"{{ $s := "x" }}{{ range until 40 }}{{ $s = cat $s $s }}{{ end }}"#,
            "steps",
        ),
        (
            r#"{{ printf "%1000000d%1000000d%1000000d%1000000d%1000000d%1000000d%1000000d%1000000d%1000000d" 1 2 3 4 5 6 7 8 9 }}"#,
            "larger than 8 MiB",
        ),
        // Work.
        (
            r#"{{ range until 100000 }}{{ range until 100000 }}{{ end }}{{ end }}"#,
            "steps",
        ),
        (
            r#"{{ $l := list }}{{ range until 100000 }}{{ $l = append $l 1 }}{{ end }}"#,
            "steps",
        ),
        (r#"{{ uniq (until 1000000) }}"#, "steps"),
        (r#"{{ splitList "" (repeat 8000000 "x") }}"#, "steps"),
        (
            r#"{{ define "t" }}{{ range until 1000 }}{{ end }}{{ template "t" }}{{ end }}{{ template "t" }}"#,
            "depth",
        ),
    ] {
        let msg = render_err(src);
        assert!(msg.contains(bound), "{src}: {msg}");
    }
}

#[test]
fn a_function_used_as_an_operand_is_called_without_arguments() {
    // Found by fuzzing: these called `printf` with no arguments and panicked.
    for src in [
        "{{ printf.EventTime }}",
        "{{ len printf }}",
        "{{ (printf).Reason }}",
        "{{ .Reason | printf.X }}",
    ] {
        let e = parse_err(src);
        assert!(
            e.message.contains("wrong number of args for printf"),
            "{src}: {e}"
        );
    }
    // One that takes no arguments is fine there.
    assert!(render("{{ len now.String }}").parse::<usize>().is_ok());
}

#[test]
fn extreme_numbers_do_not_overflow() {
    // Found in review: these overflowed (a panic in a debug or fuzzing build).
    for src in [
        "{{ untilStep 1 10 9223372036854775807 }}",
        "{{ untilStep -1 -10 -9223372036854775807 }}",
        "{{ seq 9223372036854775807 }}",
        "{{ seq -9223372036854775808 -9223372036854775807 }}",
        "{{ ago (int64 -9223372036854775808) }}",
        "{{ ago (int64 9223372036854775807) }}",
        "{{ durationRound (toDate \"2006\" \"0001\") }}",
        "{{ abbrevboth -9223372036854775808 10 \"a long enough string to abbreviate\" }}",
        "{{ date \"2006-01-02\" (int64 9223372036854775807) }}",
        "{{ date \"2006-01-02\" (int64 -9223372036854775808) }}",
        "{{ htmlDate (int64 -9223372036854775808) }}",
        "{{ dateModify \"-2562047h\" (toDate \"2006\" \"0001\") }}",
        "{{ add 9223372036854775807 1 }}{{ mul 9223372036854775807 3 }}{{ sub -9223372036854775808 1 }}",
        "{{ div -9223372036854775808 -1 }}{{ mod -9223372036854775808 -1 }}",
        "{{ trunc -9223372036854775808 \"abc\" }}{{ substr -9223372036854775808 9223372036854775807 \"abc\" }}",
        "{{ printf \"%x %o %b %c %U %q\" -9223372036854775808 -9223372036854775808 -9223372036854775808 -9223372036854775808 -9223372036854775808 -9223372036854775808 }}",
    ] {
        let _ = render(src);
    }
    assert_eq!(render("{{ untilStep 1 10 9223372036854775807 }}"), "[1]");
}

#[test]
fn work_proportional_to_what_a_function_is_given_is_paid_for() {
    // Found in review: each of these did work or allocated in proportion to its input at the
    // cost of one step, so a loop of them ran for minutes or built gigabytes first.
    let nested =
        r#"{{ $l := list }}{{ range until 2000 }}{{ $l = list $l }}{{ end }}{{ printf "%d" $l }}"#;
    assert!(render_err(nested).contains("nested deeper than 100"));
    let concat = format!(
        "{{{{ $l := until 100000 }}}}{{{{ concat {} }}}}",
        vec!["$l"; 100].join(" ")
    );
    assert!(render_err(&concat).contains("steps"));
    let format = r#"{{ $big := repeat 100000 "2006" }}{{ range until 1000 }}{{ $_ := $.LastTimestamp.Format $big }}{{ end }}"#;
    assert!(render_err(format).contains("steps"));
    let hashes = r#"{{ $big := repeat 1000000 "x" }}{{ range until 1000 }}{{ $_ := sha256sum $big }}{{ end }}"#;
    assert!(render_err(hashes).contains("steps"));
    let objects =
        r#"{{ range until 100000 }}{{ $_ := eq $.InvolvedObject $.InvolvedObject }}{{ end }}"#;
    assert!(render_err(objects).contains("steps"));
    // Reading one element no longer copies the list: a range that indexes its list is linear.
    let indexed = render(
        r#"{{ $l := until 50000 }}{{ range $i, $_ := $l }}{{ if eq (index $l $i) 49999 }}{{ last $l }}{{ first $l }}{{ end }}{{ end }}"#,
    );
    assert_eq!(indexed, "499990");
    // Found in the second review: `continue`/`break` left a range before its output was
    // checked, a dict's keys and a list's strings were read for one step, and a dict ranged
    // over cost one step whatever it held.
    for (src, bound) in [
        (
            r#"{{ range until 300000 }}0123456789012345678901234567890123456789{{ continue }}{{ end }}"#,
            "larger than 8 MiB",
        ),
        (
            r#"{{ range until 300000 }}0123456789012345678901234567890123456789{{ if true }}{{ break }}{{ end }}{{ end }}"#,
            "",
        ),
        (
            r#"{{ $s := repeat 100000 "k" }}{{ $l := list $s $s $s $s $s $s $s $s $s $s }}{{ range until 1000 }}{{ $_ := toStrings $l }}{{ end }}"#,
            "steps",
        ),
        (
            r#"{{ $k := repeat 1000000 "k" }}{{ $d := dict $k 1 }}{{ range until 1000 }}{{ $_ := keys $d }}{{ end }}"#,
            "steps",
        ),
        (
            r#"{{ $d := dict }}{{ range until 10000 }}{{ $_ := set $d (toString .) 1 }}{{ end }}{{ range until 1000 }}{{ range $d }}{{ end }}{{ end }}"#,
            "steps",
        ),
        (
            r#"{{ $h := repeat 1000000 "x" }}{{ range until 1000 }}{{ $_ := regexMatch "y" $h }}{{ end }}"#,
            "steps",
        ),
    ] {
        if bound.is_empty() {
            // `break` after the first element: nothing to bound.
            assert_eq!(render(src).len(), 40, "{src}");
        } else {
            let msg = render_err(src);
            assert!(msg.contains(bound), "{src}: {msg}");
        }
    }
}

#[test]
fn dollar_is_the_event_whatever_variables_are_declared() {
    // Found in review: with a variable declared anywhere, `$` read as <no value>.
    assert_eq!(
        render(r#"{{ $x := 1 }}{{ $.Reason }}/{{ $x }}"#),
        "BackOff/1"
    );
    assert_eq!(
        render(r#"{{ range $i, $v := until 2 }}{{ $.Reason }}{{ $i }}{{ end }}"#),
        "BackOff0BackOff1"
    );
}
