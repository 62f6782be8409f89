//! The path through which generated code names the runtime crate:
//! `::munggoggo`, or what `crate = "..."` gives for code that reaches
//! munggoggo through a re-export or under another name.

use std::time::Duration;

use proc_macro2::{Span, TokenStream};
use quote::{quote, ToTokens};
use syn::{Ident, Path};

/// The runtime crate's path in generated code.
#[derive(Clone)]
pub(crate) struct Crate {
    path: Path,
}

impl Default for Crate {
    fn default() -> Self {
        Crate {
            path: syn::parse_quote!(::munggoggo),
        }
    }
}

impl ToTokens for Crate {
    fn to_tokens(&self, tokens: &mut TokenStream) {
        self.path.to_tokens(tokens);
    }
}

impl Crate {
    /// The crate at `path`, as `crate = ...` gives it.
    pub(crate) fn new(path: Path) -> Self {
        Crate { path }
    }

    /// `<crate>::__private`: what generated code uses.
    pub(crate) fn private(&self) -> TokenStream {
        quote!(#self::__private)
    }

    /// `<crate>::__private` spanned at `span`, for `quote_spanned!` code
    /// whose errors rustc reports at the user's token (a bound, a check).
    pub(crate) fn private_at(&self, span: Span) -> TokenStream {
        respan(self.private(), span)
    }

    /// The tokens of a `Duration` constant.
    pub(crate) fn duration(&self, d: Duration) -> TokenStream {
        let p = self.private();
        if d.subsec_nanos().is_multiple_of(1_000_000) {
            if let Ok(ms) = u64::try_from(d.as_millis()) {
                return quote!(#p::Duration::from_millis(#ms));
            }
        }
        let secs = d.as_secs();
        let nanos = d.subsec_nanos();
        quote!(#p::Duration::new(#secs, #nanos))
    }

    /// Whether `prefix` names the runtime crate: `munggoggo` (with or
    /// without a leading `::`) or this path.
    pub(crate) fn is(&self, prefix: &[&Ident]) -> bool {
        let given = self.path.segments.iter().map(|s| &s.ident);
        matches!(prefix, [only] if *only == "munggoggo") || given.eq(prefix.iter().copied())
    }
}

/// A path's tokens, each spanned at `span`, as `quote_spanned!` spans the
/// tokens it writes out (but not the ones interpolated into it).
pub(crate) fn respan(tokens: TokenStream, span: Span) -> TokenStream {
    tokens
        .into_iter()
        .map(|mut token| {
            token.set_span(span);
            token
        })
        .collect()
}
