//! Helpers shared by the attribute parsers: key bookkeeping (unknown and
//! duplicate keys), values (strings, durations, integers) and recognising
//! munggoggo's attributes by their whole path.

use std::time::Duration;

use proc_macro2::TokenStream;
use quote::quote;
use syn::meta::ParseNestedMeta;
use syn::{Attribute, Expr, ExprLit, Lit, LitInt, LitStr, Token};

use crate::errors::Errors;

/// The keys of one attribute: rejects unknown keys (listing the valid ones)
/// and keys given twice.
pub(crate) struct Keys {
    /// The attribute, as the user writes it: `behaviour`.
    attr: &'static str,
    valid: &'static [&'static str],
    seen: Vec<String>,
}

impl Keys {
    pub(crate) fn new(attr: &'static str, valid: &'static [&'static str]) -> Self {
        Keys {
            attr,
            valid,
            seen: Vec::new(),
        }
    }

    /// The attribute's name, for messages.
    pub(crate) fn attr(&self) -> &'static str {
        self.attr
    }

    /// The key of `meta` if it is valid and new. Otherwise records why not,
    /// skips the key's value and returns `None`.
    pub(crate) fn accept(
        &mut self,
        meta: &ParseNestedMeta<'_>,
        errors: &mut Errors,
    ) -> syn::Result<Option<String>> {
        let attr = self.attr;
        let key = meta.path.get_ident().map(ToString::to_string);
        let Some(key) = key.filter(|k| self.valid.contains(&k.as_str())) else {
            let shown = path_string(&meta.path);
            errors.spanned(
                &meta.path,
                format!(
                    "unknown argument `{shown}` in `#[{attr}]`; expected one of: {}",
                    self.valid
                        .iter()
                        .map(|k| format!("`{k}`"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
            skip_value(meta)?;
            return Ok(None);
        };
        if self.seen.contains(&key) {
            errors.spanned(
                &meta.path,
                format!("duplicate argument `{key}` in `#[{attr}]`; give it once"),
            );
            skip_value(meta)?;
            return Ok(None);
        }
        self.seen.push(key.clone());
        Ok(Some(key))
    }
}

fn path_string(path: &syn::Path) -> String {
    path.segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::")
}

/// Consumes whatever value follows a key (`= expr` or `(...)`), so that
/// parsing goes on after an error.
pub(crate) fn skip_value(meta: &ParseNestedMeta<'_>) -> syn::Result<()> {
    if meta.input.peek(Token![=]) {
        meta.value()?.parse::<Expr>()?;
    } else if meta.input.peek(syn::token::Paren) {
        meta.input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

/// A key that takes no value (`oneshot`): records an error if one is given.
pub(crate) fn flag(meta: &ParseNestedMeta<'_>, keys: &Keys, errors: &mut Errors) -> syn::Result<bool> {
    if meta.input.peek(Token![=]) || meta.input.peek(syn::token::Paren) {
        let key = path_string(&meta.path);
        errors.spanned(
            &meta.path,
            format!(
                "`{key}` in `#[{}]` takes no value; write just `{key}`",
                keys.attr()
            ),
        );
        skip_value(meta)?;
        return Ok(false);
    }
    Ok(true)
}

/// The value of `key = <expr>`, or `None` (error recorded) when the `=` is missing.
fn value(
    meta: &ParseNestedMeta<'_>,
    keys: &Keys,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<Expr>> {
    if !meta.input.peek(Token![=]) {
        let key = path_string(&meta.path);
        errors.spanned(
            &meta.path,
            format!("`{key}` in `#[{}]` needs a value: `{example}`", keys.attr()),
        );
        skip_value(meta)?;
        return Ok(None);
    }
    Ok(Some(meta.value()?.parse::<Expr>()?))
}

/// The string literal of `key = "..."`.
pub(crate) fn string(
    meta: &ParseNestedMeta<'_>,
    keys: &Keys,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<LitStr>> {
    let Some(expr) = value(meta, keys, example, errors)? else {
        return Ok(None);
    };
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(Some(s)),
        other => {
            let key = path_string(&meta.path);
            errors.spanned(
                other,
                format!(
                    "`{key}` in `#[{}]` takes a string literal: `{example}`",
                    keys.attr()
                ),
            );
            Ok(None)
        }
    }
}

/// One or more string literals: `key = "a"` or `key = ["a", "b"]`.
pub(crate) fn strings(
    meta: &ParseNestedMeta<'_>,
    keys: &Keys,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<Vec<LitStr>>> {
    let Some(expr) = value(meta, keys, example, errors)? else {
        return Ok(None);
    };
    let key = path_string(&meta.path);
    let wrong = |errors: &mut Errors, tokens: &dyn quote::ToTokens| {
        errors.spanned(
            tokens,
            format!(
                "`{key}` in `#[{}]` takes a string literal or an array of them: `{example}`",
                keys.attr()
            ),
        );
    };
    match expr {
        Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(Some(vec![s])),
        Expr::Array(array) => {
            // Every element that is not a string is reported, not only the first.
            let mut all = Vec::new();
            let mut bad = false;
            for elem in &array.elems {
                match elem {
                    Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => all.push(s.clone()),
                    other => {
                        wrong(errors, other);
                        bad = true;
                    }
                }
            }
            if bad {
                return Ok(None);
            }
            if all.is_empty() {
                errors.spanned(
                    &array,
                    format!(
                        "`{key}` in `#[{}]` needs at least one value: `{example}`",
                        keys.attr()
                    ),
                );
                return Ok(None);
            }
            Ok(Some(all))
        }
        other => {
            wrong(errors, &other);
            Ok(None)
        }
    }
}

/// A duration literal, `key = "5s"`, checked with humantime; with
/// `positive`, zero is refused too.
pub(crate) fn duration(
    meta: &ParseNestedMeta<'_>,
    keys: &Keys,
    positive: bool,
    errors: &mut Errors,
) -> syn::Result<Option<Duration>> {
    let key = path_string(&meta.path);
    let example = format!("{key} = \"5s\"");
    let Some(lit) = string(meta, keys, &example, errors)? else {
        return Ok(None);
    };
    match humantime::parse_duration(lit.value().trim()) {
        Ok(d) if positive && d.is_zero() => {
            errors.spanned(
                &lit,
                format!(
                    "`{key}` in `#[{}]` must be longer than zero, such as \"5s\" or \"250ms\"",
                    keys.attr()
                ),
            );
            Ok(None)
        }
        Ok(d) => Ok(Some(d)),
        Err(e) => {
            errors.spanned(
                &lit,
                format!(
                    "invalid duration {:?} for `{key}` in `#[{}]`: {e}; write numbers with units, such as \"5s\", \"250ms\" or \"1m 30s\"",
                    lit.value(),
                    keys.attr()
                ),
            );
            Ok(None)
        }
    }
}

/// An integer literal of type `T` and at least `min`, `key = 64`.
pub(crate) fn integer<T>(
    meta: &ParseNestedMeta<'_>,
    keys: &Keys,
    min: T,
    example: &str,
    errors: &mut Errors,
) -> syn::Result<Option<T>>
where
    T: std::str::FromStr + PartialOrd + std::fmt::Display,
    T::Err: std::fmt::Display,
{
    let key = path_string(&meta.path);
    let Some(expr) = value(meta, keys, example, errors)? else {
        return Ok(None);
    };
    let lit: LitInt = match expr {
        Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i,
        other => {
            errors.spanned(
                other,
                format!(
                    "`{key}` in `#[{}]` takes an integer literal: `{example}`",
                    keys.attr()
                ),
            );
            return Ok(None);
        }
    };
    match lit.base10_parse::<T>() {
        Ok(v) if v >= min => Ok(Some(v)),
        Ok(_) => {
            errors.spanned(
                &lit,
                format!(
                    "`{key}` in `#[{}]` must be at least {min}, such as `{example}`",
                    keys.attr()
                ),
            );
            Ok(None)
        }
        Err(e) => {
            errors.spanned(
                &lit,
                format!(
                    "invalid `{key}` in `#[{}]`: {e}; write a number such as `{example}`",
                    keys.attr()
                ),
            );
            Ok(None)
        }
    }
}

/// The tokens of a `Duration` constant.
pub(crate) fn duration_tokens(d: Duration) -> TokenStream {
    if d.subsec_nanos() % 1_000_000 == 0 {
        if let Ok(ms) = u64::try_from(d.as_millis()) {
            return quote!(::munggoggo::__private::Duration::from_millis(#ms));
        }
    }
    let secs = d.as_secs();
    let nanos = d.subsec_nanos();
    quote!(::munggoggo::__private::Duration::new(#secs, #nanos))
}

/// The attributes the `#[agent]` impl block consumes, matched by their
/// whole path: the imported name (`behaviour`), `munggoggo::behaviour` or
/// `munggoggo::prelude::behaviour` (with or without a leading `::`). Any
/// other path (`other::rpc`) is not ours and is left in place.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Role {
    Setup,
    Teardown,
    Behaviour,
    OnMessage,
    Rpc,
}

impl Role {
    pub(crate) fn of(attr: &Attribute) -> Option<Role> {
        let segments: Vec<String> = attr.path().segments.iter().map(|s| s.ident.to_string()).collect();
        let name = match segments.as_slice() {
            [name] => name,
            [krate, name] if krate == "munggoggo" => name,
            [krate, prelude, name] if krate == "munggoggo" && prelude == "prelude" => name,
            _ => return None,
        };
        Some(match name.as_str() {
            "setup" => Role::Setup,
            "teardown" => Role::Teardown,
            "behaviour" => Role::Behaviour,
            "on_message" => Role::OnMessage,
            "rpc" => Role::Rpc,
            _ => return None,
        })
    }

    /// The attribute's name as written.
    pub(crate) fn name(self) -> &'static str {
        match self {
            Role::Setup => "setup",
            Role::Teardown => "teardown",
            Role::Behaviour => "behaviour",
            Role::OnMessage => "on_message",
            Role::Rpc => "rpc",
        }
    }
}
