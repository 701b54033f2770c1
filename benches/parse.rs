//! Parsing cost of hostile configs: each shape at about 200 KB and at twice that, through
//! `spec::parse` and `validate` (what `plan`, `convert` and `sync` do per file). Linear time
//! shows as a ratio near 2 between the two sizes; every run must stay well under a second.
//! Run with `cargo bench --bench parse`.

use std::time::Instant;

use hermit_pex::spec;

const HEAD: &str = "package: x\nbinaries: [x]\n";

/// A config of about `bytes` bytes of one shape.
type Shape = (&'static str, fn(usize) -> String);

fn shapes() -> Vec<Shape> {
    vec![
        ("nested [", |n| format!("{HEAD}versions: {}", "[".repeat(n))),
        ("nested [ at limit", |_| {
            format!("{HEAD}versions: {}", "[".repeat(spec::MAX_FLOW_OPENERS - 1))
        }),
        ("nested {", |n| {
            format!("{HEAD}versions: {}", "{a: ".repeat(n / 4))
        }),
        ("versions entries", |n| {
            let entries = "  - *v\n".repeat(n / 7);
            format!("{HEAD}versions:\n  - &v {{version: \"1.0\", python: \"3.12\"}}\n{entries}")
        }),
        ("distinct versions", |n| {
            let entries: String = (0..n / 34)
                .map(|i| format!("- version: \"{i}\"\n  python: \"3.12\"\n"))
                .collect();
            format!("{HEAD}versions:\n{entries}")
        }),
        ("exclude entries", |n| {
            let entries: String = (0..n / 10).map(|i| format!("- \"{i}.1\"\n")).collect();
            format!("{HEAD}versions: [{{version: \"1\", python: \"3.12\"}}]\nexclude:\n{entries}")
        }),
        ("binaries entries", |n| {
            let entries: String = (0..n / 9).map(|i| format!("- b{i}\n")).collect();
            format!(
                "package: x\nversions: [{{version: \"1\", python: \"3.12\"}}]\nbinaries:\n{entries}"
            )
        }),
        ("compact - - -", |n| {
            format!("{HEAD}versions:\n{}x\n", "- ".repeat(n / 2))
        }),
        ("indented maps", |n| {
            let mut s = format!("{HEAD}versions:\n");
            let mut depth = 0;
            while s.len() < n {
                s.push_str(&format!("{}k{depth}:\n", " ".repeat(depth)));
                depth += 1;
            }
            s
        }),
        ("one long scalar", |n| {
            format!("{HEAD}description: {}\n", "x".repeat(n))
        }),
        ("many keys", |n| {
            format!("{HEAD}{}", "package: x\n".repeat(n / 11))
        }),
        ("1 MiB + 1", |_| {
            format!("{HEAD}#{}\n", "x".repeat(spec::MAX_CONFIG_BYTES))
        }),
    ]
}

fn run(text: &str) -> (f64, String) {
    let started = Instant::now();
    let outcome = spec::parse(text).and_then(|s| s.validate().map_err(|mut p| p.remove(0)));
    let elapsed = started.elapsed().as_secs_f64();
    let what = match outcome {
        Ok(_) => "parsed".to_owned(),
        Err(p) => format!(
            "{}: {}",
            p.field,
            p.message.chars().take(70).collect::<String>()
        ),
    };
    (elapsed, what)
}

fn main() {
    let mut worst: f64 = 0.0;
    println!(
        "{:<18} {:>9} {:>9} {:>9}  outcome",
        "shape", "bytes", "seconds", "2x ratio"
    );
    for (name, make) in shapes() {
        let small = make(200_000);
        let large = make(400_000);
        let (t1, what) = run(&small);
        let (t2, _) = run(&large);
        worst = worst.max(t1).max(t2);
        println!(
            "{name:<18} {:>9} {t1:>9.4} {:>9.1}  {what}",
            small.len(),
            if t1 > 1e-4 { t2 / t1 } else { f64::NAN }
        );
    }
    println!("slowest run: {worst:.4} s");
}
