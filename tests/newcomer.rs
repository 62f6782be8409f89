//! A newcomer's crate, made from what the README and the guide show: the
//! README's `Cargo.toml` lines (with `munggoggo` pointed at this checkout),
//! the README's example as `src/main.rs` and every program of the guide as
//! an example target (the testing chapter's needs the `[dev-dependencies]`
//! line for tokio's `test-util`). `cargo check --all-targets` must pass: a
//! missing dependency line (`tracing`, `test-util`) fails here before it
//! fails a user, which the workspace's own doctests cannot show.
//!
//! The crate and its build folder stay in cargo's `target/tmp`, so a rerun
//! checks only what changed.

use std::path::Path;
use std::process::Command;

/// The text of the first fenced block opened by `fence` after `heading`.
fn block<'a>(text: &'a str, heading: &str, fence: &str) -> &'a str {
    let from = text
        .find(heading)
        .unwrap_or_else(|| panic!("no {heading:?} in the text"));
    let rest = &text[from..];
    let start = rest
        .find(fence)
        .map(|at| at + fence.len())
        .unwrap_or_else(|| panic!("no {fence} block after {heading:?}"));
    let rest = &rest[start..];
    let body = &rest[rest.find('\n').expect("a fence line") + 1..];
    &body[..body.find("\n```").expect("a closing fence") + 1]
}

/// The guide's pages, in order.
fn guide_pages(root: &Path) -> Vec<std::path::PathBuf> {
    let mut pages: Vec<_> = std::fs::read_dir(root.join("docs/guide"))
        .expect("the guide")
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|e| e == "md"))
        .collect();
    pages.sort();
    pages
}

/// The whole programs (with a `fn main`) among a page's Rust blocks, as a
/// reader sees them: rustdoc's hidden `# ` lines shown, blocks marked
/// `ignore` or `compile_fail` left out.
fn programs(page: &str) -> Vec<String> {
    let mut programs = Vec::new();
    let mut rest = page;
    while let Some(at) = rest.find("```rust") {
        let after = &rest[at + 3..];
        let info_end = after.find('\n').expect("a fence line");
        let info = &after[..info_end];
        let body_and_more = &after[info_end + 1..];
        let end = body_and_more.find("\n```").map_or(body_and_more.len(), |e| e + 1);
        let body = &body_and_more[..end];
        rest = &body_and_more[end..];
        if info.contains("ignore") || info.contains("compile_fail") || !body.contains("fn main") {
            continue;
        }
        let shown = body
            .lines()
            .map(|line| match line.strip_prefix('#') {
                Some(hidden) if hidden.is_empty() || hidden.starts_with(' ') => {
                    hidden.trim_start_matches(' ')
                }
                _ => line,
            })
            .collect::<Vec<_>>()
            .join("\n");
        programs.push(shown + "\n");
    }
    programs
}

/// The README's dependency lines, with `munggoggo` taken from this checkout:
/// the line without features, and with `also` (say `munggoggo-cli`) the
/// commented-out line of that crate of the workspace too, from this
/// checkout as well.
fn dependencies(readme: &str, root: &Path, also: Option<&str>) -> String {
    let munggoggo = root.join("munggoggo");
    let path = munggoggo.display();
    let chosen = also.map(|name| (format!("# {name} = \"0.1\""), root.join(name)));
    let lines: Vec<String> = block(readme, "## Use it in your crate", "```toml")
        .lines()
        // The crates shown for "if you use them" (`# anyhow = "1"`): the
        // guide's programs do.
        .map(|line| match line.strip_prefix("# ") {
            Some(optional)
                if optional.starts_with(|c: char| c.is_ascii_lowercase())
                    && !optional.starts_with("munggoggo")
                    && optional.contains(" = ") =>
            {
                optional
            }
            _ => line,
        })
        .map(|line| match (line.strip_prefix("munggoggo = \"0.1\""), &chosen) {
            (Some(rest), _) => format!("munggoggo = {{ version = \"0.1\", path = \"{path}\" }}{rest}"),
            (None, Some((commented, dir))) if line.starts_with(commented.as_str()) => format!(
                "{} = {{ version = \"0.1\", path = \"{}\" }}{}",
                &commented[2..commented.find(" = ").unwrap_or(2)],
                dir.display(),
                &line[commented.len()..]
            ),
            (None, _) => line.to_owned(),
        })
        .collect();
    let text = lines.join("\n");
    assert!(
        text.contains(&format!("path = \"{path}\"")) && text.contains("[dev-dependencies]"),
        "the README's lines changed shape (looking for {chosen:?}):\n{text}"
    );
    text
}

/// Checks (`cargo check --all-targets`) a crate of these dependency lines,
/// the README's example and `programs`, kept in `target/tmp/<name>`.
fn check(name: &str, dependencies: &str, programs: &[(String, String)]) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("the README");
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join(name);
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::create_dir_all(dir.join("examples")).unwrap();
    let manifest = format!(
        "[package]\nname = \"{name}\"\nversion = \"0.1.0\"\nedition = \"2021\"\npublish = false\n\n\
         # Not a member of munggoggo's workspace.\n[workspace]\n\n{dependencies}\n"
    );
    let mut files = vec![
        ("Cargo.toml".to_owned(), manifest),
        (
            "src/main.rs".to_owned(),
            block(&readme, "# munggoggo", "```rust").to_owned(),
        ),
    ];
    files.extend(programs.iter().cloned());
    let expected: Vec<&str> = files.iter().map(|(name, _)| name.as_str()).collect();
    for entry in std::fs::read_dir(dir.join("examples")).unwrap() {
        let path = entry.unwrap().path();
        let name = format!("examples/{}", path.file_name().unwrap().to_string_lossy());
        if !expected.contains(&name.as_str()) {
            std::fs::remove_file(path).unwrap();
        }
    }
    for (name, text) in &files {
        let path = dir.join(name);
        // Unchanged files keep their times, so cargo rechecks nothing.
        if std::fs::read_to_string(&path).ok().as_deref() != Some(text.as_str()) {
            std::fs::write(&path, text).unwrap();
        }
    }
    // The workspace's lock: the same versions, and no registry needed.
    let lock = std::fs::read_to_string(root.join("Cargo.lock")).expect("the workspace's Cargo.lock");
    if !dir.join("Cargo.lock").exists() {
        std::fs::write(dir.join("Cargo.lock"), lock).unwrap();
    }

    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .args([
            "check",
            "--all-targets",
            "--offline",
            "--quiet",
            "--message-format",
            "short",
        ])
        .current_dir(&dir);
    // Nothing of this test's own cargo run leaks into the newcomer's.
    for (var, _) in std::env::vars_os() {
        let var = var.to_string_lossy();
        if var.starts_with("CARGO_") && var != "CARGO_HOME" || var == "RUSTFLAGS" {
            command.env_remove(&*var);
        }
    }
    command.env("CARGO_TARGET_DIR", dir.join("target"));
    let output = command.output().expect("cargo runs");
    assert!(
        output.status.success(),
        "a crate from the README's lines and the guide's programs does not build:\n{}\n--- Cargo.toml:\n{}",
        String::from_utf8_lossy(&output.stderr),
        files[0].1
    );
}

/// Files of a crate: their paths in the crate, and their text.
type Files = Vec<(String, String)>;

/// The guide's programs, named by page and place; those of the launcher
/// need the crate `munggoggo-cli`.
fn guide_programs(root: &Path) -> (Files, Files) {
    let (mut embedded, mut cli) = (Vec::new(), Vec::new());
    for page in guide_pages(root) {
        let text = std::fs::read_to_string(&page).unwrap();
        let stem = page.file_stem().unwrap().to_string_lossy().replace('-', "_");
        for (n, program) in programs(&text).into_iter().enumerate() {
            let file = (format!("examples/{stem}_{n}.rs"), program);
            if file.1.contains("munggoggo_cli") {
                cli.push(file);
            } else {
                embedded.push(file);
            }
        }
    }
    (embedded, cli)
}

#[test]
fn a_crate_of_the_readme_and_the_guide_builds_on_the_embedded_bus() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("the README");
    let (programs, _) = guide_programs(root);
    assert!(
        programs
            .iter()
            .any(|(name, _)| name == "examples/08_testing_0.rs"),
        "the testing chapter's program is among them"
    );
    check("newcomer", &dependencies(&readme, root, None), &programs);
}

#[cfg(feature = "cli")]
#[test]
fn a_crate_with_the_readme_s_cli_line_builds_the_launcher_programs() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let readme = std::fs::read_to_string(root.join("README.md")).expect("the README");
    let (_, programs) = guide_programs(root);
    assert!(!programs.is_empty(), "the operations chapter shows a launcher");
    let lines = dependencies(&readme, root, Some("munggoggo-cli"));
    assert!(
        lines.contains("munggoggo-cli = {"),
        "the README shows munggoggo-cli:\n{lines}"
    );
    check("newcomer-cli", &lines, &programs);
}
