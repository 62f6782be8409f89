//! The value after one key: a flag's absence of one, strings, durations,
//! integers, paths, and the `crate` path. Each reader records a mistake
//! spanned on the offending token, consumes the value and returns `None`,
//! so that parsing goes on to the next key.

use std::time::Duration;

use proc_macro2::Span;
use syn::parse::{Parse, ParseStream};
use syn::{Expr, ExprLit, Lit, LitInt, LitStr, Path, PathArguments, Token};

use crate::errors::Errors;
use crate::krate::Crate;

/// The input right after a key, and what messages say about the key.
pub(crate) struct Value<'a> {
    input: ParseStream<'a>,
    /// The attribute, as the user writes it: `behaviour`.
    attr: &'static str,
    /// The key, as the user writes it: `periodic`.
    key: &'static str,
    /// The key's token.
    span: Span,
}

/// Consumes whatever value follows a key (`= expr` or `(...)`), so that
/// parsing goes on after an error.
pub(super) fn skip(input: ParseStream<'_>) -> syn::Result<()> {
    if input.peek(Token![=]) {
        input.parse::<Token![=]>()?;
        input.parse::<Expr>()?;
    } else if input.peek(syn::token::Paren) {
        input.parse::<proc_macro2::Group>()?;
    }
    Ok(())
}

impl<'a> Value<'a> {
    pub(super) fn new(input: ParseStream<'a>, attr: &'static str, key: &'static str, span: Span) -> Self {
        Value {
            input,
            attr,
            key,
            span,
        }
    }

    /// Where the user wrote the key.
    pub(crate) fn span(&self) -> Span {
        self.span
    }

    /// The input at the value, for a value with a syntax of its own.
    pub(crate) fn input(&self) -> ParseStream<'a> {
        self.input
    }

    /// Consumes the value, whatever it is.
    pub(crate) fn skip(&self) -> syn::Result<()> {
        skip(self.input)
    }

    /// Records `message` at the key and consumes its value.
    pub(crate) fn reject(&self, errors: &mut Errors, message: impl std::fmt::Display) -> syn::Result<()> {
        errors.at(self.span, message);
        self.skip()
    }

    /// A key that takes no value (`oneshot`): records an error if one is given.
    pub(crate) fn flag(&self, errors: &mut Errors) -> syn::Result<bool> {
        if self.input.peek(Token![=]) || self.input.peek(syn::token::Paren) {
            let key = self.key;
            self.reject(
                errors,
                format!("`{key}` in `#[{}]` takes no value; write just `{key}`", self.attr),
            )?;
            return Ok(false);
        }
        Ok(true)
    }

    /// `key = <T>` parsed as it is, or `None` with `help` recorded at the
    /// key when the `=` is missing.
    pub(crate) fn parse<T: Parse>(&self, help: &str, errors: &mut Errors) -> syn::Result<Option<T>> {
        if !self.input.peek(Token![=]) {
            self.reject(errors, help)?;
            return Ok(None);
        }
        self.input.parse::<Token![=]>()?;
        Ok(Some(self.input.parse::<T>()?))
    }

    /// The value of `key = <expr>`, or `None` (error recorded) when the `=` is missing.
    fn expr(&self, example: &str, errors: &mut Errors) -> syn::Result<Option<Expr>> {
        let help = format!("`{}` in `#[{}]` needs a value: `{example}`", self.key, self.attr);
        self.parse(&help, errors)
    }

    /// The string literal of `key = "..."`.
    pub(crate) fn string(&self, example: &str, errors: &mut Errors) -> syn::Result<Option<LitStr>> {
        let Some(expr) = self.expr(example, errors)? else {
            return Ok(None);
        };
        match expr {
            Expr::Lit(ExprLit { lit: Lit::Str(s), .. }) => Ok(Some(s)),
            other => {
                errors.spanned(
                    other,
                    format!(
                        "`{}` in `#[{}]` takes a string literal: `{example}`",
                        self.key, self.attr
                    ),
                );
                Ok(None)
            }
        }
    }

    /// One or more string literals: `key = "a"` or `key = ["a", "b"]`.
    pub(crate) fn strings(&self, example: &str, errors: &mut Errors) -> syn::Result<Option<Vec<LitStr>>> {
        let Some(expr) = self.expr(example, errors)? else {
            return Ok(None);
        };
        let (key, attr) = (self.key, self.attr);
        let wrong = |errors: &mut Errors, tokens: &dyn quote::ToTokens| {
            errors.spanned(
                tokens,
                format!("`{key}` in `#[{attr}]` takes a string literal or an array of them: `{example}`"),
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
                        format!("`{key}` in `#[{attr}]` needs at least one value: `{example}`"),
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
    pub(crate) fn duration(&self, positive: bool, errors: &mut Errors) -> syn::Result<Option<Duration>> {
        let (key, attr) = (self.key, self.attr);
        let example = format!("{key} = \"5s\"");
        let Some(lit) = self.string(&example, errors)? else {
            return Ok(None);
        };
        match humantime::parse_duration(lit.value().trim()) {
            Ok(d) if positive && d.is_zero() => {
                errors.spanned(
                    &lit,
                    format!("`{key}` in `#[{attr}]` must be longer than zero, such as \"5s\" or \"250ms\""),
                );
                Ok(None)
            }
            Ok(d) => Ok(Some(d)),
            Err(e) => {
                errors.spanned(
                    &lit,
                    format!(
                        "invalid duration {:?} for `{key}` in `#[{attr}]`: {e}; write numbers with units, such as \"5s\", \"250ms\" or \"1m 30s\"",
                        lit.value(),
                    ),
                );
                Ok(None)
            }
        }
    }

    /// An integer literal of type `T` and at least `min`, `key = 64`.
    pub(crate) fn integer<T>(&self, min: T, example: &str, errors: &mut Errors) -> syn::Result<Option<T>>
    where
        T: std::str::FromStr + PartialOrd + std::fmt::Display,
        T::Err: std::fmt::Display,
    {
        let (key, attr) = (self.key, self.attr);
        let Some(expr) = self.expr(example, errors)? else {
            return Ok(None);
        };
        let lit: LitInt = match expr {
            Expr::Lit(ExprLit { lit: Lit::Int(i), .. }) => i,
            other => {
                errors.spanned(
                    other,
                    format!("`{key}` in `#[{attr}]` takes an integer literal: `{example}`"),
                );
                return Ok(None);
            }
        };
        match lit.base10_parse::<T>() {
            Ok(v) if v >= min => Ok(Some(v)),
            Ok(_) => {
                errors.spanned(
                    &lit,
                    format!("`{key}` in `#[{attr}]` must be at least {min}, such as `{example}`"),
                );
                Ok(None)
            }
            Err(e) => {
                errors.spanned(
                    &lit,
                    format!("invalid `{key}` in `#[{attr}]`: {e}; write a number such as `{example}`"),
                );
                Ok(None)
            }
        }
    }

    /// `crate = "path::to::munggoggo"`, a string literal as tokio's and
    /// serde's `crate` take it, or the bare path `crate = path::to::munggoggo`.
    pub(crate) fn crate_path(&self, errors: &mut Errors) -> syn::Result<Option<Crate>> {
        let attr = self.attr;
        let example = "crate = \"my_reexport::munggoggo\"";
        let help =
            format!("write the path of the munggoggo crate as this code names it, such as `{example}`");
        let Some(expr) = self.expr(example, errors)? else {
            return Ok(None);
        };
        match expr {
            Expr::Lit(ExprLit {
                lit: Lit::Str(lit), ..
            }) => match lit.parse_with(Path::parse_mod_style) {
                Ok(path) => Ok(Some(Crate::new(path))),
                Err(_) => {
                    errors.spanned(
                        &lit,
                        format!(
                            "invalid `crate` in `#[{attr}]`: {:?} is not a path; {help}",
                            lit.value()
                        ),
                    );
                    Ok(None)
                }
            },
            Expr::Path(p)
                if p.qself.is_none()
                    && p.attrs.is_empty()
                    && p.path
                        .segments
                        .iter()
                        .all(|s| matches!(s.arguments, PathArguments::None)) =>
            {
                Ok(Some(Crate::new(p.path)))
            }
            other => {
                errors.spanned(
                    other,
                    format!("`crate` in `#[{attr}]` takes a path as a string literal; {help}"),
                );
                Ok(None)
            }
        }
    }
}
