//! `#[derive(Event)]` for brokerkit (re-exported as `brokerkit::Event` with the sdk's default
//! `derive` feature).
//!
//! ```ignore
//! #[derive(serde::Serialize, serde::Deserialize, schemars::JsonSchema, brokerkit::Event)]
//! #[event(name = "order.placed", version = 2)]
//! struct OrderPlaced { order_id: u64 }
//! ```
//!
//! `name` is required (a non-empty string of letters, digits and `.-_`); `version` defaults
//! to 1 and must be at least 1. A mistake is a compile error pointing at the attribute.

use proc_macro::TokenStream;
use proc_macro2::Span;
use quote::quote;
use syn::{parse_macro_input, DeriveInput, LitInt, LitStr};

/// Implements `brokerkit::Event` from `#[event(name = "...", version = N)]`.
#[proc_macro_derive(Event, attributes(event))]
pub fn derive_event(input: TokenStream) -> TokenStream {
    let input = parse_macro_input!(input as DeriveInput);
    match expand(&input) {
        Ok(tokens) => tokens.into(),
        Err(e) => e.to_compile_error().into(),
    }
}

fn expand(input: &DeriveInput) -> syn::Result<proc_macro2::TokenStream> {
    let mut name: Option<LitStr> = None;
    let mut version: Option<LitInt> = None;
    for attr in input.attrs.iter().filter(|a| a.path().is_ident("event")) {
        attr.parse_nested_meta(|meta| {
            if meta.path.is_ident("name") {
                let lit: LitStr = meta.value()?.parse()?;
                check_name(&lit)?;
                name = Some(lit);
                Ok(())
            } else if meta.path.is_ident("version") {
                let lit: LitInt = meta.value()?.parse()?;
                let v: u32 = lit.base10_parse()?;
                if v == 0 {
                    return Err(syn::Error::new(lit.span(), "event versions start at 1"));
                }
                version = Some(lit);
                Ok(())
            } else {
                Err(meta.error("unknown key; #[event] takes `name = \"...\"` and `version = N`"))
            }
        })?;
    }
    let Some(name) = name else {
        return Err(syn::Error::new(
            Span::call_site(),
            "#[derive(Event)] needs #[event(name = \"...\")] (and optionally `version = N`)",
        ));
    };
    let version = match version {
        Some(v) => quote!(#v),
        None => quote!(1),
    };
    let ident = &input.ident;
    let (impl_generics, ty_generics, where_clause) = input.generics.split_for_impl();
    Ok(quote! {
        impl #impl_generics ::brokerkit::Event for #ident #ty_generics #where_clause {
            const NAME: &'static str = #name;
            const VERSION: u32 = #version;
        }
    })
}

fn check_name(lit: &LitStr) -> syn::Result<()> {
    let value = lit.value();
    let ok = !value.is_empty()
        && value
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if ok {
        Ok(())
    } else {
        Err(syn::Error::new(
            lit.span(),
            "event names are non-empty and use letters, digits, '.', '-' and '_'",
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(src: &str) -> Result<String, String> {
        let input: DeriveInput = syn::parse_str(src).map_err(|e| e.to_string())?;
        expand(&input)
            .map(|t| t.to_string())
            .map_err(|e| e.to_string())
    }

    #[test]
    fn expands_name_and_version() {
        let out =
            run(r#"#[event(name = "order.placed", version = 2)] struct A { x: u32 }"#).unwrap();
        assert!(out.contains(":: brokerkit :: Event for A"), "{out}");
        assert!(out.contains("\"order.placed\""), "{out}");
        assert!(out.contains("VERSION : u32 = 2"), "{out}");
        let out = run(r#"#[event(name = "a")] struct B<T> { t: T }"#).unwrap();
        assert!(out.contains("VERSION : u32 = 1"), "{out}");
        assert!(out.contains("for B < T >"), "{out}");
    }

    #[test]
    fn mistakes_are_compile_errors_that_say_what_is_wrong() {
        let cases = [
            ("struct A;", "needs #[event(name"),
            (r#"#[event(version = 2)] struct A;"#, "needs #[event(name"),
            (
                r#"#[event(name = "a", version = 0)] struct A;"#,
                "start at 1",
            ),
            (
                r#"#[event(name = "a b")] struct A;"#,
                "event names are non-empty",
            ),
            (
                r#"#[event(name = "")] struct A;"#,
                "event names are non-empty",
            ),
            (
                r#"#[event(name = "a", colour = "red")] struct A;"#,
                "unknown key",
            ),
            (
                r#"#[event(name = "a", version = "2")] struct A;"#,
                "expected integer",
            ),
            (
                r#"#[event(name = "a", version = 99999999999)] struct A;"#,
                "number too large",
            ),
        ];
        for (src, want) in cases {
            let e = run(src).unwrap_err();
            assert!(e.contains(want), "{src}: {e}");
        }
    }
}
