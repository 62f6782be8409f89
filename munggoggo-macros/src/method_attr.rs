//! The attributes an `#[agent]` impl block consumes, in one table. Each
//! is a `#[proc_macro_attribute]` of its own, which only reports a method
//! outside an `#[agent]` impl (`stray.rs`); inside one, the impl block
//! recognises it by its path and the method becomes what it says
//! (`agent::parse::Role`, with the attribute's arguments).

use syn::{Attribute, Ident};

use crate::krate::Crate;

/// Declares [`MethodAttr`] from the table below: the enum, `ALL` and the
/// names, so that an attribute is added in one line.
macro_rules! method_attrs {
    ($($(#[$doc:meta])* $variant:ident = $name:literal,)*) => {
        /// One of the attributes an `#[agent]` impl block consumes.
        #[derive(Debug, Clone, Copy, PartialEq, Eq)]
        pub(crate) enum MethodAttr {
            $($(#[$doc])* $variant,)*
        }

        impl MethodAttr {
            /// Every such attribute.
            pub(crate) const ALL: &'static [MethodAttr] = &[$(MethodAttr::$variant),*];

            /// The attribute's name as written: `on_message`.
            pub(crate) fn name(self) -> &'static str {
                match self {
                    $(MethodAttr::$variant => $name,)*
                }
            }
        }
    };
}

method_attrs! {
    /// `#[setup]`: runs once before everything else.
    Setup = "setup",
    /// `#[teardown]`: runs once at stop.
    Teardown = "teardown",
    /// `#[behaviour(...)]`: periodic, oneshot, delayed or cyclic.
    Behaviour = "behaviour",
    /// `#[on_message(...)]`: a message handler.
    OnMessage = "on_message",
    /// `#[rpc]`: callable by name.
    Rpc = "rpc",
}

impl MethodAttr {
    /// The attribute `attr` is, matched by its whole path: the imported
    /// name (`behaviour`), or the name under the runtime crate or its
    /// prelude, `munggoggo::behaviour` or `munggoggo::prelude::behaviour`
    /// (with or without a leading `::`; and the same under the path
    /// `crate = "..."` gives). Any other path (`other::rpc`) is not ours
    /// and is left in place.
    pub(crate) fn of(attr: &Attribute, krate: &Crate) -> Option<MethodAttr> {
        let segments = &attr.path().segments;
        let last = segments.last()?;
        if !last.arguments.is_none() {
            return None;
        }
        let prefix: Vec<&Ident> = segments
            .iter()
            .take(segments.len() - 1)
            .map(|s| &s.ident)
            .collect();
        let ours = match prefix.split_last() {
            None => true,
            Some((prelude, krate_path)) if *prelude == "prelude" && krate.is(krate_path) => true,
            Some(_) => krate.is(&prefix),
        };
        if !ours {
            return None;
        }
        MethodAttr::ALL.iter().copied().find(|a| last.ident == a.name())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_attribute_is_recognised_by_its_name() {
        let krate = Crate::default();
        for attr in MethodAttr::ALL {
            let name = syn::parse_str::<Ident>(attr.name()).unwrap();
            for written in [
                syn::parse_quote!(#[#name]),
                syn::parse_quote!(#[munggoggo::#name]),
                syn::parse_quote!(#[::munggoggo::prelude::#name]),
            ] {
                assert_eq!(MethodAttr::of(&written, &krate), Some(*attr));
            }
            let foreign: Attribute = syn::parse_quote!(#[other::#name]);
            assert_eq!(MethodAttr::of(&foreign, &krate), None);
        }
    }

    #[test]
    fn the_crate_path_names_the_runtime_too() {
        let krate = Crate::new(syn::parse_quote!(my_reexport::mg));
        let attr: Attribute = syn::parse_quote!(#[my_reexport::mg::rpc]);
        assert_eq!(MethodAttr::of(&attr, &krate), Some(MethodAttr::Rpc));
        let attr: Attribute = syn::parse_quote!(#[my_reexport::mg::prelude::rpc]);
        assert_eq!(MethodAttr::of(&attr, &krate), Some(MethodAttr::Rpc));
        let attr: Attribute = syn::parse_quote!(#[mg::rpc]);
        assert_eq!(MethodAttr::of(&attr, &krate), None);
    }
}
