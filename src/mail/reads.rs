//! What a notification's templates read: the dotted paths (`case.case_ref`, `property.address`)
//! its subject, text and HTML templates look up, with the layouts and partials they extend and
//! include, found by static analysis. `check` compares them with the personal fields each
//! definition allows officers' notifications to carry (crate::personal).
//!
//! minijinja's `undeclared_variables` gives each template's own lookups but not what it
//! includes, so the names of included, extended and imported templates are read from its syntax
//! tree (minijinja's `unstable_machinery`, pinned by Cargo.lock). A name that is not a string
//! literal cannot be followed: the template is then taken to read every field.

use std::collections::{BTreeMap, BTreeSet};

use minijinja::machinery::{WhitespaceConfig, ast, parse};

use super::Renderer;

/// What a template reads when it includes a template whose name is computed: anything.
pub const ANYTHING: &str = "";

impl Renderer {
    /// The paths each template of notification `kind` reads, by template name, following
    /// `extends`, `include` and `import` to the templates they name.
    pub fn reads(&self, kind: &str) -> BTreeMap<String, BTreeSet<String>> {
        let mut out = BTreeMap::new();
        let mut todo: Vec<String> = ["subject", "txt", "html"]
            .iter()
            .map(|s| format!("{kind}.{s}.j2"))
            .collect();
        while let Some(name) = todo.pop() {
            if out.contains_key(&name) {
                continue;
            }
            let Ok(template) = self.env.get_template(&name) else {
                continue;
            };
            let mut reads: BTreeSet<String> =
                template.undeclared_variables(true).into_iter().collect();
            if let Ok(tree) = parse(
                template.source(),
                &name,
                Default::default(),
                WhitespaceConfig::default(),
            ) {
                let mut named = Vec::new();
                walk(&tree, &mut named);
                for n in named {
                    match n {
                        Some(n) => todo.push(n),
                        None => {
                            reads.insert(ANYTHING.to_string());
                        }
                    }
                }
            }
            out.insert(name, reads);
        }
        out
    }
}

/// The templates a syntax tree names in `extends`, `include` and `import`: `None` for a name
/// that is not a string literal.
fn walk(stmt: &ast::Stmt<'_>, out: &mut Vec<Option<String>>) {
    let all = |body: &[ast::Stmt<'_>], out: &mut Vec<Option<String>>| {
        body.iter().for_each(|s| walk(s, out))
    };
    let name = |e: &ast::Expr<'_>| match e {
        ast::Expr::Const(c) => c.value.as_str().map(str::to_string),
        _ => None,
    };
    match stmt {
        ast::Stmt::Template(t) => all(&t.children, out),
        ast::Stmt::ForLoop(f) => {
            all(&f.body, out);
            all(&f.else_body, out);
        }
        ast::Stmt::IfCond(i) => {
            all(&i.true_body, out);
            all(&i.false_body, out);
        }
        ast::Stmt::WithBlock(w) => all(&w.body, out),
        ast::Stmt::SetBlock(s) => all(&s.body, out),
        ast::Stmt::AutoEscape(a) => all(&a.body, out),
        ast::Stmt::FilterBlock(f) => all(&f.body, out),
        ast::Stmt::Block(b) => all(&b.body, out),
        ast::Stmt::Macro(m) => all(&m.body, out),
        ast::Stmt::CallBlock(c) => all(&c.macro_decl.body, out),
        ast::Stmt::Extends(e) => out.push(name(&e.name)),
        ast::Stmt::Include(i) => match &i.name {
            // `include ["a", "b"]` takes the first that exists: either may be read.
            ast::Expr::List(l) => l.items.iter().for_each(|e| out.push(name(e))),
            e => out.push(name(e)),
        },
        ast::Stmt::Import(i) => out.push(name(&i.expr)),
        ast::Stmt::FromImport(i) => out.push(name(&i.expr)),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn renderer(files: &[(&str, &str)]) -> Renderer {
        let files: Vec<(String, String)> = files
            .iter()
            .map(|(n, t)| (n.to_string(), t.to_string()))
            .collect();
        Renderer::new(std::path::Path::new("templates"), &files).0
    }

    fn all(reads: &BTreeMap<String, BTreeSet<String>>) -> BTreeSet<String> {
        reads.values().flatten().cloned().collect()
    }

    #[test]
    fn a_kind_reads_what_its_partials_and_its_layout_read() {
        let r = renderer(&[
            ("k.subject.j2", "{{ case.case_ref }}"),
            (
                "k.txt.j2",
                "{% if task %}{% include \"_p.j2\" %}{% endif %}",
            ),
            (
                "k.html.j2",
                "{% extends \"layout.j2\" %}{% block b %}{{ sla.target_at }}{% endblock %}",
            ),
            ("_p.j2", "{{ property.address }}"),
            (
                "layout.j2",
                "{{ recipient.name }}{% block b %}{% endblock %}",
            ),
            ("unused.j2", "{{ applicant.name }}"),
        ]);
        let reads = r.reads("k");
        assert_eq!(
            reads["_p.j2"],
            BTreeSet::from(["property.address".to_string()])
        );
        let all = all(&reads);
        assert!(all.contains("recipient.name") && all.contains("sla.target_at"));
        assert!(!all.contains("applicant.name"));
    }

    #[test]
    fn an_include_by_a_computed_name_reads_anything() {
        let r = renderer(&[
            ("k.subject.j2", "x"),
            ("k.txt.j2", "{% include case.kind ~ \".j2\" %}"),
        ]);
        assert!(r.reads("k")["k.txt.j2"].contains(ANYTHING));
    }
}
