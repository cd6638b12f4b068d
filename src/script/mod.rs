//! The Rhai sandbox: one engine with every limit set, strict variables, no `eval`, and a
//! wall-clock deadline per evaluation. Scripts get their facts as arguments and return decisions;
//! Rhai has no file, network, environment or database access to begin with. Definitions, advice
//! conditions and the rule set all compile with it, so it depends on none of them.

use std::cell::Cell;
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rhai::{AST, CallFnOptions, Dynamic, Engine, EvalAltResult, FuncArgs, Position, Scope};
use sha2::{Digest, Sha256};

use crate::problems::Problem;

mod helpers;
mod limits;
mod values;

pub use helpers::Loads;
pub use limits::Limits;
pub use values::from_json;

/// Operations between two looks at the clock for the deadline: microseconds apart.
const DEADLINE_EVERY: u64 = 256;

thread_local! {
    static DEADLINE: Cell<Option<Instant>> = const { Cell::new(None) };
}

/// A compiled script and where it came from.
#[derive(Debug, Clone)]
pub struct Script {
    pub name: String,
    pub path: PathBuf,
    pub ast: AST,
    /// Content hash, recorded with every decision the script makes.
    pub version: String,
}

/// Why an evaluation failed, with the script position when Rhai knows it.
#[derive(Debug, Clone, thiserror::Error)]
#[error("{script} ({path}{position}): {message}")]
pub struct RuleError {
    pub script: String,
    pub path: String,
    pub position: String,
    pub message: String,
}

pub struct Sandbox {
    engine: Engine,
    deadline: Duration,
    /// Positions of every script statement and expression evaluated, when measuring coverage.
    coverage: Option<Arc<Mutex<Hits>>>,
}

/// (script name, line, column) of each evaluated node.
pub type Hits = BTreeSet<(String, usize, usize)>;

/// A branch of an `if` in a script, from its first to its last position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Branch {
    pub script: String,
    pub path: PathBuf,
    pub start: (usize, usize),
    pub end: (usize, usize),
    /// "then" or "else".
    pub arm: &'static str,
}

impl std::fmt::Debug for Sandbox {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sandbox")
            .field("deadline", &self.deadline)
            .finish_non_exhaustive()
    }
}

impl Sandbox {
    pub fn new(limits: &Limits) -> Sandbox {
        let mut engine = Engine::new();
        engine
            .set_max_operations(limits.max_operations)
            .set_max_call_levels(limits.max_call_depth)
            .set_max_expr_depths(limits.max_expression_depth, limits.max_expression_depth)
            .set_max_string_size(limits.max_string_size)
            .set_max_array_size(limits.max_array_size)
            .set_max_map_size(limits.max_map_size)
            .set_strict_variables(true)
            .set_fail_on_invalid_map_property(true);
        // No `eval`, and no `import`: Rhai's default module resolver would read script files.
        engine.disable_symbol("eval");
        engine.disable_symbol("import");
        engine.set_module_resolver(rhai::module_resolvers::DummyModuleResolver::new());
        // `print` and `debug` go to the log at debug level: scripts may handle personal data.
        engine.on_print(|s| tracing::debug!(target: "casewarden::rules", "script print: {s}"));
        engine.on_debug(
            |s, _, pos| tracing::debug!(target: "casewarden::rules", "script debug at {pos}: {s}"),
        );
        helpers::register(&mut engine);
        engine.on_progress(|operations| {
            // Reading the clock costs more than most operations: look every so often.
            if operations % DEADLINE_EVERY != 0 {
                return None;
            }
            let late = DEADLINE.with(|d| d.get().is_some_and(|at| Instant::now() > at));
            late.then(|| Dynamic::from("the evaluation deadline passed"))
        });
        Sandbox {
            engine,
            deadline: Duration::from_millis(limits.deadline_ms),
            coverage: None,
        }
    }

    /// A sandbox that records every node it evaluates, for `rules test` coverage. Slower: use it
    /// for tests only.
    pub fn with_coverage(limits: &Limits) -> Sandbox {
        let mut sandbox = Sandbox::new(limits);
        let hits: Arc<Mutex<Hits>> = Arc::default();
        let record = hits.clone();
        // Rhai marks the debugger interface volatile, not deprecated; the version is pinned by
        // Cargo.lock and this use is covered by a test.
        #[allow(deprecated)]
        sandbox.engine.register_debugger(
            |_, debugger| debugger,
            move |_, _, _, source, pos| {
                if let (Some(source), Some(line), Some(col)) = (source, pos.line(), pos.position())
                {
                    record
                        .lock()
                        .expect("coverage lock")
                        .insert((source.to_string(), line, col));
                }
                Ok(rhai::debugger::DebuggerCommand::StepInto)
            },
        );
        sandbox.coverage = Some(hits);
        sandbox
    }

    /// What a coverage sandbox has recorded so far.
    pub fn hits(&self) -> Hits {
        self.coverage
            .as_ref()
            .map(|h| h.lock().expect("coverage lock").clone())
            .unwrap_or_default()
    }

    /// Compiles a script, reporting a syntax error at its line and column.
    pub fn compile(&self, name: &str, path: &Path, text: &str) -> Result<Script, Problem> {
        match self.engine.compile(text) {
            Ok(mut ast) => Ok(Script {
                name: name.to_string(),
                path: path.to_path_buf(),
                ast: {
                    ast.set_source(name);
                    ast
                },
                version: hex::encode(&Sha256::digest(text.as_bytes())[..8]),
            }),
            Err(e) => Err(Problem::new(
                path,
                line_col(e.position()),
                e.err_type().to_string(),
            )),
        }
    }

    /// Compiles a one-line expression that sees the case's facts as `case_facts`, as definitions
    /// use for targets. On error: (line, column, message) within the expression.
    pub fn compile_expression(&self, text: &str) -> Result<AST, (usize, usize, String)> {
        self.compile_expression_over(&["case_facts"], text)
    }

    /// Compiles an expression over the named variables (strict variables: any other name is an
    /// error). On error: (line, column, message) within the expression.
    pub fn compile_expression_over(
        &self,
        variables: &[&str],
        text: &str,
    ) -> Result<AST, (usize, usize, String)> {
        let mut scope = Scope::new();
        for v in variables {
            scope.push(*v, Dynamic::UNIT);
        }
        self.engine
            .compile_expression_with_scope(&scope, text)
            .map_err(|e| {
                let (line, col) = line_col(e.position());
                (line, col, e.err_type().to_string())
            })
    }

    /// Evaluates an expression from [`Sandbox::compile_expression`] under the limits and the
    /// deadline.
    pub fn eval_expression(&self, ast: &AST, case_facts: Dynamic) -> Result<Dynamic, String> {
        self.eval_expression_over(ast, vec![("case_facts", case_facts)])
    }

    /// Evaluates an expression from [`Sandbox::compile_expression_over`] with its variables.
    pub fn eval_expression_over(
        &self,
        ast: &AST,
        variables: Vec<(&'static str, Dynamic)>,
    ) -> Result<Dynamic, String> {
        let mut scope = Scope::new();
        for (name, value) in variables {
            scope.push(name, value);
        }
        DEADLINE.with(|d| d.set(Some(Instant::now() + self.deadline)));
        let result = self.engine.eval_ast_with_scope::<Dynamic>(&mut scope, ast);
        DEADLINE.with(|d| d.set(None));
        result.map_err(|e| e.to_string())
    }

    /// Calls `function` in `script` with `args` under the limits and the deadline. Blocking:
    /// call it from a blocking thread.
    pub fn call(
        &self,
        script: &Script,
        function: &str,
        args: impl FuncArgs,
    ) -> Result<Dynamic, RuleError> {
        self.evaluate(script, function, args)
            .map_err(|e| rule_error(script, &e))
    }

    /// Calls `function` as [`Sandbox::call`] does, with arguments that may be shared and
    /// read-only (`Dynamic::into_read_only().into_shared()`), so that many calls take the same
    /// value without each copying it. `None` when the script changed such an argument in place,
    /// which it may do to a copy: call it again with copies, and it behaves as it would have.
    /// `loads`, when given, are those of a shared array of officers among the arguments, for
    /// `least_loaded` to choose from without reading the officers' maps.
    pub fn call_sharing(
        &self,
        script: &Script,
        function: &str,
        args: impl FuncArgs,
        loads: Option<Arc<Loads>>,
    ) -> Result<Option<Dynamic>, RuleError> {
        let options = match loads {
            Some(loads) => CallFnOptions::new().with_tag(loads),
            None => CallFnOptions::new(),
        };
        match self.evaluate_with(script, function, args, options) {
            Err(e) if changed_a_shared_value(&e) => Ok(None),
            result => result.map(Some).map_err(|e| rule_error(script, &e)),
        }
    }

    fn evaluate(
        &self,
        script: &Script,
        function: &str,
        args: impl FuncArgs,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        self.evaluate_with(script, function, args, CallFnOptions::new())
    }

    fn evaluate_with(
        &self,
        script: &Script,
        function: &str,
        args: impl FuncArgs,
        options: CallFnOptions,
    ) -> Result<Dynamic, Box<EvalAltResult>> {
        DEADLINE.with(|d| d.set(Some(Instant::now() + self.deadline)));
        let result = self.engine.call_fn_with_options::<Dynamic>(
            options,
            &mut Scope::new(),
            &script.ast,
            function,
            args,
        );
        DEADLINE.with(|d| d.set(None));
        result
    }
}

/// Whether an evaluation failed on changing a read-only value or on a shared value in use:
/// what a shared argument causes where a copy would not.
fn changed_a_shared_value(e: &EvalAltResult) -> bool {
    match e {
        EvalAltResult::ErrorAssignmentToConstant(..)
        | EvalAltResult::ErrorNonPureMethodCallOnConstant(..)
        | EvalAltResult::ErrorDataRace(..) => true,
        EvalAltResult::ErrorInFunctionCall(_, _, inner, _)
        | EvalAltResult::ErrorInModule(_, inner, _) => changed_a_shared_value(inner),
        _ => false,
    }
}

fn line_col(pos: Position) -> (usize, usize) {
    (pos.line().unwrap_or(1), pos.position().unwrap_or(1))
}

fn rule_error(script: &Script, e: &EvalAltResult) -> RuleError {
    let message = match e {
        EvalAltResult::ErrorTerminated(..) => "stopped: the evaluation deadline passed".to_string(),
        EvalAltResult::ErrorTooManyOperations(..) => {
            "stopped: the script ran too many operations (rules.limits.max_operations)".to_string()
        }
        other => other.to_string(),
    };
    let position = match e.position() {
        p if p.is_none() => String::new(),
        p => format!(":{}:{}", p.line().unwrap_or(0), p.position().unwrap_or(0)),
    };
    RuleError {
        script: script.name.clone(),
        path: script.path.display().to_string(),
        position,
        message,
    }
}

/// Every branch of every `if` in a script: the `then` block, and the `else` block where there
/// is one.
pub fn branches(script: &Script) -> Vec<Branch> {
    let mut out = Vec::new();
    script.ast.walk(&mut |path: &[rhai::ASTNode]| {
        if let Some(rhai::ASTNode::Stmt(rhai::Stmt::If(flow, _))) = path.last() {
            for (arm, block) in [("then", &flow.body), ("else", &flow.branch)] {
                let span = block.span();
                if block.is_empty() || span.is_none() {
                    continue;
                }
                out.push(Branch {
                    script: script.name.clone(),
                    path: script.path.clone(),
                    start: line_col(span.start()),
                    end: line_col(span.end()),
                    arm,
                });
            }
        }
        true
    });
    out.sort_by_key(|b| (b.start, b.arm));
    out.dedup();
    out
}

/// The functions a script defines, with their arities.
pub fn functions(script: &Script) -> Vec<(String, usize)> {
    script
        .ast
        .iter_functions()
        .map(|f| (f.name.to_string(), f.params.len()))
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn script(sandbox: &Sandbox, text: &str) -> Script {
        sandbox
            .compile("t", Path::new("rules/t.rhai"), text)
            .unwrap()
    }

    #[test]
    fn a_syntax_error_names_its_line_and_column() {
        let sandbox = Sandbox::new(&Limits::default());
        let err = sandbox
            .compile("t", Path::new("rules/t.rhai"), "fn f(x) {\n  let y = ;\n}")
            .unwrap_err();
        assert_eq!((err.line, err.column), (2, 11), "{err}");
    }

    #[test]
    fn an_undefined_variable_is_refused_when_compiling() {
        let sandbox = Sandbox::new(&Limits::default());
        let err = sandbox
            .compile("t", Path::new("rules/t.rhai"), "fn f(x) {\n  x + nope\n}")
            .unwrap_err();
        assert_eq!(err.line, 2, "{err}");
        assert!(err.message.contains("nope"), "{err}");
    }

    #[test]
    fn an_endless_loop_is_stopped_by_the_operation_limit() {
        let sandbox = Sandbox::new(&Limits {
            max_operations: 10_000,
            ..Limits::default()
        });
        let s = script(&sandbox, "fn f() { loop { } }");
        let err = sandbox.call(&s, "f", ()).unwrap_err();
        assert!(err.message.contains("too many operations"), "{err}");
    }

    #[test]
    fn an_endless_loop_is_stopped_by_the_deadline() {
        let sandbox = Sandbox::new(&Limits {
            max_operations: u64::MAX,
            deadline_ms: 50,
            ..Limits::default()
        });
        let s = script(&sandbox, "fn f() { loop { } }");
        let err = sandbox.call(&s, "f", ()).unwrap_err();
        assert!(err.message.contains("deadline"), "{err}");
    }

    #[test]
    fn scripts_cannot_import_modules_from_files() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("secret.rhai"), "export const X = 1;").unwrap();
        let sandbox = Sandbox::new(&Limits::default());
        let text = format!(
            "import \"{}/secret\" as s;\nfn f() {{ s::X }}",
            dir.path().display()
        );
        assert!(sandbox.compile("t", Path::new("t.rhai"), &text).is_err());
    }

    #[test]
    fn coverage_finds_the_branches_a_call_did_not_take() {
        let sandbox = Sandbox::with_coverage(&Limits::default());
        let s = sandbox
            .compile(
                "t",
                Path::new("rules/t.rhai"),
                "fn f(x) {\n  if x > 1 {\n    1\n  } else {\n    2\n  }\n}",
            )
            .unwrap();
        let arms = branches(&s);
        assert_eq!(
            arms.iter().map(|b| (b.arm, b.start.0)).collect::<Vec<_>>(),
            vec![("then", 2), ("else", 4)]
        );
        let _ = sandbox.call(&s, "f", (5_i64,)).unwrap();
        let hits = sandbox.hits();
        let taken = |b: &Branch| {
            hits.iter()
                .any(|(n, l, c)| n == "t" && (*l, *c) > b.start && (*l, *c) < b.end)
        };
        assert!(taken(&arms[0]) && !taken(&arms[1]));
        let _ = sandbox.call(&s, "f", (0_i64,)).unwrap();
        let hits = sandbox.hits();
        let taken = |b: &Branch| {
            hits.iter()
                .any(|(n, l, c)| n == "t" && (*l, *c) > b.start && (*l, *c) < b.end)
        };
        assert!(taken(&arms[1]));
    }

    #[test]
    fn eval_is_not_available_to_scripts() {
        let sandbox = Sandbox::new(&Limits::default());
        assert!(
            sandbox
                .compile("t", Path::new("t.rhai"), "fn f() { eval(\"1\") }")
                .is_err()
        );
    }
}
