//! `#[behaviour]`, `#[on_message]`, `#[setup]`, `#[teardown]` and `#[rpc]`
//! expanding on their own: the `#[agent]` impl block consumes them, so
//! reaching here means the method is not in one.

use proc_macro2::{Span, TokenStream};
use quote::quote;

use crate::method_attr::MethodAttr;

/// Emits the item unchanged and an error at the attribute.
pub(crate) fn expand(attr: MethodAttr, _args: TokenStream, item: TokenStream) -> TokenStream {
    let name = attr.name();
    let method = syn::parse2::<syn::ImplItemFn>(item.clone()).ok();
    let message = match method {
        Some(m) if m.sig.receiver().is_some() => format!(
            "`#[{name}]` only works on a method inside an `#[agent]` impl block: add `#[agent]` to the `impl` that contains `{}`",
            m.sig.ident
        ),
        Some(m) => format!(
            "`#[{name}]` only works on a method inside an `#[agent]` impl block: move `{}` into the `#[agent] impl` of your agent and give it `&mut self`",
            m.sig.ident
        ),
        None => format!("`#[{name}]` only works on a method inside an `#[agent]` impl block"),
    };
    let error = syn::Error::new(Span::call_site(), message).into_compile_error();
    quote!(#item #error)
}
