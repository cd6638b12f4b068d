//! A strict reader of the OpenMetrics text format (what `/metrics` serves), independent of the
//! crate that writes it: every line must be a HELP, TYPE or UNIT of a family declared once, a
//! sample of a declared family with a suffix its type allows, or the final `# EOF`; labels must
//! be quoted and escaped; histograms' buckets must be cumulative and end at `+Inf` = `_count`.
//! `prometheus-parse` reads the same text as a second, lenient, opinion.

use std::collections::{BTreeMap, HashMap};

pub type Labels = BTreeMap<String, String>;

#[derive(Debug)]
pub struct Exposition {
    /// Each family's type.
    pub families: HashMap<String, String>,
    pub samples: Vec<(String, Labels, f64)>,
}

impl Exposition {
    /// Reads `text`, panicking at the first line that breaks the format.
    pub fn parse(text: &str) -> Exposition {
        assert!(
            text.ends_with("# EOF\n"),
            "the exposition ends with # EOF: {text}"
        );
        let mut families: HashMap<String, String> = HashMap::new();
        let mut samples = Vec::new();
        let lines: Vec<&str> = text.lines().collect();
        for (n, line) in lines[..lines.len() - 1].iter().enumerate() {
            let at = || format!("line {}: {line:?}", n + 1);
            if let Some(rest) = line.strip_prefix("# ") {
                let mut parts = rest.splitn(3, ' ');
                let (what, name) = (
                    parts.next().unwrap(),
                    parts.next().unwrap_or_else(|| panic!("{}", at())),
                );
                assert!(valid_name(name), "{}", at());
                match what {
                    "HELP" => assert!(parts.next().is_some_and(|h| !h.is_empty()), "{}", at()),
                    "UNIT" => {}
                    "TYPE" => {
                        let kind = parts.next().unwrap_or_else(|| panic!("{}", at()));
                        let known = [
                            "counter",
                            "gauge",
                            "histogram",
                            "info",
                            "stateset",
                            "unknown",
                            "summary",
                            "gaugehistogram",
                        ];
                        assert!(known.contains(&kind), "{}", at());
                        assert!(
                            families
                                .insert(name.to_string(), kind.to_string())
                                .is_none(),
                            "declared twice: {}",
                            at()
                        );
                    }
                    _ => panic!("not a HELP, TYPE or UNIT: {}", at()),
                }
                continue;
            }
            let (name, labels, value) =
                sample(line).unwrap_or_else(|| panic!("not a sample: {}", at()));
            let family = family_of(&families, &name)
                .unwrap_or_else(|| panic!("a sample of no declared family: {}", at()));
            if families[&family] == "histogram" && name.ends_with("_bucket") {
                assert!(labels.contains_key("le"), "a bucket without le: {}", at());
            }
            samples.push((name, labels, value));
        }
        let e = Exposition { families, samples };
        e.check_histograms();
        e
    }

    fn check_histograms(&self) {
        for (family, kind) in &self.families {
            if kind != "histogram" {
                continue;
            }
            let mut series: BTreeMap<Labels, Vec<(f64, f64)>> = BTreeMap::new();
            for (name, labels, value) in &self.samples {
                if name == &format!("{family}_bucket") {
                    let mut rest = labels.clone();
                    let le = rest.remove("le").unwrap();
                    let le = if le == "+Inf" {
                        f64::INFINITY
                    } else {
                        le.parse().unwrap()
                    };
                    series.entry(rest).or_default().push((le, *value));
                }
            }
            for (labels, buckets) in series {
                assert!(
                    buckets
                        .windows(2)
                        .all(|w| w[0].0 < w[1].0 && w[0].1 <= w[1].1),
                    "{family} {labels:?}: buckets not cumulative: {buckets:?}"
                );
                let last = buckets.last().unwrap();
                assert!(
                    last.0.is_infinite(),
                    "{family} {labels:?}: the last bucket is +Inf"
                );
                let count = self.value(
                    &format!("{family}_count"),
                    &labels
                        .iter()
                        .map(|(k, v)| (k.as_str(), v.as_str()))
                        .collect::<Vec<_>>(),
                );
                assert_eq!(
                    Some(last.1),
                    count,
                    "{family} {labels:?}: +Inf bucket = _count"
                );
            }
        }
    }

    /// The value of the sample `name` with exactly these labels.
    pub fn value(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        let want: Labels = labels
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.samples
            .iter()
            .find(|(n, l, _)| n == name && *l == want)
            .map(|s| s.2)
    }

    /// Every name a query may use: each family's samples' names.
    pub fn names(&self) -> std::collections::BTreeSet<String> {
        let mut names: std::collections::BTreeSet<String> =
            self.samples.iter().map(|s| s.0.clone()).collect();
        for (family, kind) in &self.families {
            let suffixes: &[&str] = match kind.as_str() {
                "counter" => &["_total"],
                "histogram" => &["_bucket", "_sum", "_count"],
                _ => &[""],
            };
            names.extend(suffixes.iter().map(|s| format!("{family}{s}")));
        }
        names
    }
}

fn valid_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

/// The family a sample belongs to, by the suffixes its type allows.
fn family_of(families: &HashMap<String, String>, name: &str) -> Option<String> {
    if families
        .get(name)
        .is_some_and(|k| k != "counter" && k != "histogram")
    {
        return Some(name.to_string());
    }
    let suffixed = [
        ("counter", &["_total", "_created"][..]),
        ("histogram", &["_bucket", "_sum", "_count", "_created"][..]),
        ("info", &["_info"][..]),
    ];
    suffixed.iter().find_map(|(kind, suffixes)| {
        suffixes.iter().find_map(|s| {
            let family = name.strip_suffix(s)?;
            (families.get(family).map(String::as_str) == Some(*kind)).then(|| family.to_string())
        })
    })
}

/// `name{a="1",b="x\"y"} 1.5` (an optional timestamp after).
fn sample(line: &str) -> Option<(String, Labels, f64)> {
    let end = line.find(['{', ' '])?;
    let name = &line[..end];
    if !valid_name(name) {
        return None;
    }
    let mut rest = &line[end..];
    let mut labels = Labels::new();
    if let Some(inner) = rest.strip_prefix('{') {
        let mut i = 0;
        loop {
            let eq = inner[i..].find('=')? + i;
            let key = &inner[i..eq];
            if !valid_name(key) || key.contains(':') {
                return None;
            }
            let mut chars = inner[eq + 1..].char_indices();
            if chars.next()?.1 != '"' {
                return None;
            }
            let mut value = String::new();
            let close = loop {
                let (k, c) = chars.next()?;
                match c {
                    '\\' => value.push(match chars.next()?.1 {
                        '\\' => '\\',
                        '"' => '"',
                        'n' => '\n',
                        _ => return None,
                    }),
                    '"' => break eq + 1 + k,
                    c => value.push(c),
                }
            };
            if labels.insert(key.to_string(), value).is_some() {
                return None;
            }
            match inner[close + 1..].chars().next()? {
                ',' => i = close + 2,
                '}' => {
                    rest = &inner[close + 2..];
                    break;
                }
                _ => return None,
            }
        }
    }
    let mut fields = rest.strip_prefix(' ')?.split(' ');
    let value = match fields.next()? {
        "+Inf" => f64::INFINITY,
        "-Inf" => f64::NEG_INFINITY,
        "NaN" => f64::NAN,
        v => v.parse().ok()?,
    };
    if let Some(t) = fields.next() {
        t.parse::<f64>().ok()?;
    }
    fields
        .next()
        .is_none()
        .then(|| (name.to_string(), labels, value))
}
