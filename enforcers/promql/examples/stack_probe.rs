//! Finds the smallest thread stack on which `enforce_query` completes for a worst-case query.
//!
//! promql-parser recurses once per nesting level while it parses, prints, compares and drops an
//! expression, so the gateway must run enforcement on a thread with a stack large enough for
//! the configured limits. This probe measures it (use a release build, as the gateway does):
//!
//! ```text
//! cargo run --release -p portcullis-enforcer-promql --example stack_probe
//! cargo run --release -p portcullis-enforcer-promql --example stack_probe -- or_chain 5000
//! ```
//!
//! Each attempt runs in a child process, because a stack overflow aborts the process.

use std::process::{Command, ExitCode, Stdio};
use std::time::Instant;

use portcullis_api::TenantSet;
use portcullis_enforcer_promql::{
    DEFAULT_MAX_DEPTH, DEFAULT_MAX_OPERATORS, EnforcerConfig, PromqlEnforcer,
};

/// The query of `kind` with `n` levels of nesting or `n` operators.
fn query(kind: &str, n: usize) -> Option<String> {
    let nested = |open: &str, close: &str| format!("{}up{}", open.repeat(n), close.repeat(n));
    let chained = |operator: &str| vec!["up"; n + 1].join(operator);
    Some(match kind {
        "or_chain" => chained(" or "),
        "plus_chain" => chained(" + "),
        "pow_chain" => chained(" ^ "),
        "unary_chain" => format!("{}up", "- ".repeat(n)),
        "parens" => nested("(", ")"),
        "calls" => nested("abs(", ")"),
        "aggregations" => nested("sum by (a) (", ")"),
        "subqueries" => nested("max_over_time(", "[5m:])"),
        "subqueries_around_chain" => {
            let chain = vec!["up"; n + 1].join(" or ");
            let depth = DEFAULT_MAX_DEPTH - 1;
            let open = "max_over_time(".repeat(depth);
            format!("{open}({chain}){}", "[5m:])".repeat(depth))
        }
        _ => return None,
    })
}

/// Enforces the query of `kind` and `n` on a thread with `stack_kib` KiB of stack.
fn run(kind: &str, n: usize, stack_kib: usize) -> ExitCode {
    let Some(query) = query(kind, n) else {
        return ExitCode::from(2);
    };
    let enforcer = PromqlEnforcer::new(EnforcerConfig::new("namespace")).expect("valid config");
    let allowed = TenantSet::single("acme").expect("a tenant");
    let worker = std::thread::Builder::new()
        .stack_size(stack_kib * 1024)
        .spawn(move || {
            let started = Instant::now();
            let outcome = enforcer.enforce_query(&query, &allowed);
            (outcome.map(|text| text.len()), started.elapsed())
        })
        .expect("a thread");
    let (outcome, took) = worker.join().expect("no panic");
    println!("{outcome:?} in {took:?}");
    match outcome {
        Ok(_) => ExitCode::SUCCESS,
        Err(_) => ExitCode::from(3),
    }
}

/// Whether a child process enforces `kind` and `n` on `stack_kib` KiB.
fn fits(kind: &str, n: usize, stack_kib: usize) -> bool {
    let exe = std::env::current_exe().expect("own path");
    Command::new(exe)
        .args(["--run", kind, &n.to_string(), &stack_kib.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

/// The smallest stack, to 16 KiB, on which `kind` and `n` are enforced.
fn smallest_stack(kind: &str, n: usize) -> Option<usize> {
    let (mut low, mut high) = (16, 1 << 20);
    if !fits(kind, n, high) {
        return None;
    }
    while high - low > 16 {
        let middle = (low + high) / 2;
        if fits(kind, n, middle) {
            high = middle;
        } else {
            low = middle;
        }
    }
    Some(high)
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let [flag, kind, n, stack_kib] = args.as_slice()
        && flag == "--run"
    {
        let (Ok(n), Ok(stack_kib)) = (n.parse(), stack_kib.parse()) else {
            return ExitCode::from(2);
        };
        return run(kind, n, stack_kib);
    }

    let cases: Vec<(String, usize)> = match args.as_slice() {
        [kind, n] => vec![(kind.clone(), n.parse().expect("a count"))],
        _ => {
            let depth = DEFAULT_MAX_DEPTH;
            let operators = DEFAULT_MAX_OPERATORS - 1;
            let nested = ["parens", "calls", "aggregations", "subqueries"];
            let chains = ["or_chain", "plus_chain", "pow_chain", "unary_chain"];
            let mut cases: Vec<(String, usize)> = nested
                .iter()
                .map(|kind| (kind.to_string(), depth - 1))
                .collect();
            cases.extend(chains.iter().map(|kind| (kind.to_string(), operators)));
            cases.push(("subqueries_around_chain".into(), operators));
            cases
        }
    };
    for (kind, n) in cases {
        match smallest_stack(&kind, n) {
            Some(kib) => println!("{kind} {n}: {kib} KiB"),
            None => println!("{kind} {n}: fails even on 1 GiB (or is rejected)"),
        }
    }
    ExitCode::SUCCESS
}
