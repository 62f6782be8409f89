//! Attribute arguments, `key = value, flag, ...`: every key is a keyword
//! ([`kw`]), the keys of one attribute are one enum (made by [`keys!`]),
//! and one loop ([`parse`]) rejects unknown keys (listing the valid ones)
//! and keys given twice, and hands every other key its [`Value`].

mod value;

use std::mem::Discriminant;

use proc_macro2::Span;
use syn::ext::IdentExt;
use syn::parse::ParseStream;
use syn::punctuated::Punctuated;
use syn::{Ident, Path, PathSegment, Token};

use crate::errors::Errors;
pub(crate) use value::Value;

/// The keywords of the attributes' arguments, one per key. The keys that
/// are Rust keywords are `syn`'s tokens: `crate`, `type` and `final`.
pub(crate) mod kw {
    // `#[agent]` on the struct.
    syn::custom_keyword!(identity);
    syn::custom_keyword!(prefetch);
    syn::custom_keyword!(max_queue);
    syn::custom_keyword!(trace_size);
    syn::custom_keyword!(peer_interval);
    syn::custom_keyword!(call_timeout);
    syn::custom_keyword!(new);
    syn::custom_keyword!(config);
    syn::custom_keyword!(replicated);
    syn::custom_keyword!(dedup);
    // `#[behaviour]`.
    syn::custom_keyword!(periodic);
    syn::custom_keyword!(initial_delay);
    syn::custom_keyword!(oneshot);
    syn::custom_keyword!(delay);
    syn::custom_keyword!(cyclic);
    syn::custom_keyword!(singleton);
    // `#[on_message]`.
    syn::custom_keyword!(topic);
    syn::custom_keyword!(fallback);
    syn::custom_keyword!(delivery);
    // `#[fsm]` and `#[state]`.
    syn::custom_keyword!(agent);
    syn::custom_keyword!(restart);
    syn::custom_keyword!(initial);
    syn::custom_keyword!(to);
    syn::custom_keyword!(timeout);
    // `#[message]`.
    syn::custom_keyword!(envelope);
}

/// The keys of one attribute: an enum made by [`keys!`].
pub(crate) trait Key: Copy {
    /// The attribute, as the user writes it: `behaviour`.
    const ATTR: &'static str;
    /// Every key as written, for the message about an unknown one.
    const NAMES: &'static [&'static str];
    /// Where the attribute is, if that limits its keys: ` on an impl block`.
    const PLACE: &'static str = "";
    /// Added to the message about an unknown key.
    const HELP: &'static str = "";

    /// The key at the start of `input`, consumed; `None` (nothing
    /// consumed) when the input starts with no key of this attribute.
    fn parse_key(input: ParseStream<'_>) -> syn::Result<Option<Self>>;

    /// The key as written.
    fn name(self) -> &'static str;

    /// Where the user wrote the key.
    fn span(self) -> Span;
}

/// Declares the keys of one attribute: an enum with one variant per key,
/// holding its keyword, and its [`Key`] impl.
///
/// ```text
/// keys! {
///     /// The keys of `#[message]`.
///     enum MessageKey in "message" {
///         Crate(syn::token::Crate) = "crate",
///         Type(syn::token::Type) = "type",
///         Envelope(kw::envelope) = "envelope",
///     }
/// }
/// ```
macro_rules! keys {
    (
        $(#[$meta:meta])*
        $vis:vis enum $name:ident in $attr:literal $(, place = $place:literal, help = $help:literal)? {
            $($variant:ident($keyword:path) = $text:literal),* $(,)?
        }
    ) => {
        $(#[$meta])*
        #[derive(Clone, Copy)]
        $vis enum $name {
            $(
                #[doc = concat!("`", $text, "`")]
                $variant($keyword),
            )*
        }

        impl $crate::args::Key for $name {
            const ATTR: &'static str = $attr;
            const NAMES: &'static [&'static str] = &[$($text),*];
            $(
                const PLACE: &'static str = $place;
                const HELP: &'static str = $help;
            )?

            fn parse_key(
                input: ::syn::parse::ParseStream<'_>,
            ) -> ::syn::Result<::core::option::Option<Self>> {
                $(
                    if input.peek($keyword) {
                        return input.parse().map(|k| ::core::option::Option::Some($name::$variant(k)));
                    }
                )*
                ::core::result::Result::Ok(::core::option::Option::None)
            }

            fn name(self) -> &'static str {
                match self {
                    $($name::$variant(_) => $text,)*
                }
            }

            fn span(self) -> ::proc_macro2::Span {
                match self {
                    $($name::$variant(k) => k.span,)*
                }
            }
        }
    };
}
pub(crate) use keys;

/// Parses the arguments of attribute `K`, `key = value, flag, ...`: an
/// unknown key or one given twice is recorded (its value skipped, parsing
/// goes on); every other key is handed to `each` with its value. Returns
/// an error only for input it cannot go on after.
pub(crate) fn parse<K: Key>(
    input: ParseStream<'_>,
    errors: &mut Errors,
    each: impl FnMut(K, &Value<'_>, &mut Errors) -> syn::Result<()>,
) -> syn::Result<()> {
    parse_again(input, &mut Seen::default(), errors, each)
}

/// The keys given so far, across the attributes that share them.
pub(crate) struct Seen<K>(Vec<Discriminant<K>>);

impl<K> Default for Seen<K> {
    fn default() -> Self {
        Seen(Vec::new())
    }
}

/// As [`parse`], for an attribute that may be given several times
/// (`#[message(type = "A")] #[message(envelope)]`): a key that `seen` holds
/// from an earlier one is a key given twice too.
pub(crate) fn parse_again<K: Key>(
    input: ParseStream<'_>,
    seen: &mut Seen<K>,
    errors: &mut Errors,
    mut each: impl FnMut(K, &Value<'_>, &mut Errors) -> syn::Result<()>,
) -> syn::Result<()> {
    let seen = &mut seen.0;
    while !input.is_empty() {
        match K::parse_key(input)? {
            Some(key) => {
                let value = Value::new(input, K::ATTR, key.name(), key.span());
                let which = std::mem::discriminant(&key);
                if seen.contains(&which) {
                    errors.at(
                        key.span(),
                        format!(
                            "duplicate argument `{}` in `#[{}]`; give it once",
                            key.name(),
                            K::ATTR
                        ),
                    );
                    value.skip()?;
                } else {
                    seen.push(which);
                    each(key, &value, errors)?;
                }
            }
            None => unknown::<K>(input, errors)?,
        }
        if input.is_empty() {
            break;
        }
        input.parse::<Token![,]>()?;
    }
    Ok(())
}

/// Records an unknown key, with the valid ones, and skips its value.
fn unknown<K: Key>(input: ParseStream<'_>, errors: &mut Errors) -> syn::Result<()> {
    let expected = match K::NAMES {
        [one] => format!("expected `{one}`"),
        names => format!(
            "expected one of: {}",
            names
                .iter()
                .map(|k| format!("`{k}`"))
                .collect::<Vec<_>>()
                .join(", ")
        ),
    };
    if !(input.peek(Ident::peek_any) || input.peek(Token![::])) {
        return Err(input.error(format!("expected an argument of `#[{}]`: {expected}", K::ATTR)));
    }
    let path = input.call(key_path)?;
    let shown = path
        .segments
        .iter()
        .map(|s| s.ident.to_string())
        .collect::<Vec<_>>()
        .join("::");
    errors.spanned(
        &path,
        format!(
            "unknown argument `{shown}` in `#[{}]`{}; {expected}{}",
            K::ATTR,
            K::PLACE,
            K::HELP
        ),
    );
    value::skip(input)
}

/// A key as written, keywords allowed: `a`, `a::b`, `type`.
fn key_path(input: ParseStream<'_>) -> syn::Result<Path> {
    let leading_colon = input.parse::<Option<Token![::]>>()?;
    let mut segments = Punctuated::new();
    loop {
        segments.push_value(PathSegment::from(input.call(Ident::parse_any)?));
        if !input.peek(Token![::]) {
            break;
        }
        segments.push_punct(input.parse()?);
    }
    Ok(Path {
        leading_colon,
        segments,
    })
}

/// Checks a `keys!` table: each key's name parses as its keyword.
#[cfg(test)]
pub(crate) fn check_names<K: Key>() {
    use syn::parse::Parser;
    for name in K::NAMES {
        let key = K::parse_key
            .parse_str(name)
            .unwrap_or_else(|e| panic!("`{name}` of `#[{}]`: {e}", K::ATTR));
        assert_eq!(key.map(K::name), Some(*name), "`{name}` of `#[{}]`", K::ATTR);
    }
}
